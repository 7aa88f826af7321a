/**
 * A DBA's and a deployment's paths: `npm run migrate` prepares a database
 * and exits; N instances started together on an unmigrated database all
 * come up (each waits for the migration lock instead of failing).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import { adminQuery, withDatabase } from '../src/db/admin';
import { projectRoot } from '../src/paths';
import { adminClient } from './helpers/db';
import { request, start } from './helpers/process';
import { within } from './helpers/time';

/** An empty database (not cloned from the migrated template), dropped at teardown. */
async function emptyDatabase(t: Parameters<typeof adminClient>[0]): Promise<string> {
  const serverUrl = process.env.SIGNALBOX_TEST_SERVER_URL!;
  const name = `signalbox_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  await adminQuery(serverUrl, `create database ${name}`);
  t.teardown(() => adminQuery(serverUrl, `drop database if exists ${name} with (force)`));
  return withDatabase(serverUrl, name);
}

t.test('three instances started at once on an unmigrated database all answer', async (t) => {
  const url = await emptyDatabase(t);
  const servers = await within(Promise.all([1, 2, 3].map(() => start({ DATABASE_URL: url, PRUNE_SCHEDULE: 'off' }))), 120_000, 'three listen');
  t.teardown(() => servers.forEach((s) => s.child.kill('SIGKILL')));
  for (const [i, s] of servers.entries()) {
    t.equal((await request(s.base, 'GET', '/healthz')).status, 200, `instance ${i + 1} answers`);
    t.notMatch(s.output(), /Failed to get exclusive lock/, `instance ${i + 1} did not fail on the migration lock`);
  }
  const admin = await adminClient(t, url);
  const { rows } = await admin.query(`select count(*)::int as n from graphile_migrate.migrations`);
  t.ok(rows[0].n >= 14, 'the migrations ran once, to the end');
  const reg = await request(servers[2]!.base, 'POST', '/auth/register', { username: 'third_instance', password: 'long enough pw' });
  t.equal(reg.status, 201, 'and the schema serves');
});

t.test('npm run migrate: migrations only, then exit; a second run has nothing to do', async (t) => {
  const url = await emptyDatabase(t);
  const run = () => spawnSync(process.execPath, [path.join(projectRoot, 'dist', 'scripts', 'migrate.js')], {
    cwd: projectRoot, env: { ...process.env, DATABASE_URL: url }, encoding: 'utf8', timeout: 120_000,
  });
  const first = run();
  t.equal(first.status, 0, `exits 0: ${first.stderr}`);
  t.match(first.stdout, /up to date/);
  const admin = await adminClient(t, url);
  const { rows: [m] } = await admin.query(`select count(*)::int as n from graphile_migrate.migrations`);
  t.ok(m.n >= 14, 'the committed migrations are applied');
  const { rows: [w] } = await admin.query(`select to_regclass('graphile_worker.jobs') is not null as ok`);
  t.ok(w.ok, 'and graphile-worker\'s schema is installed');
  const second = run();
  t.equal(second.status, 0, 'a second run exits 0');
  const { rows: [again] } = await admin.query(`select count(*)::int as n from graphile_migrate.migrations`);
  t.equal(again.n, m.n, 'and applies nothing more');
});
