/**
 * Runs every test/sql/*.sql check through psql, the way a DBA would, against
 * a fresh database. Each "ok - …" line a script prints is one assertion; a
 * failing assertion raises "not ok - …", psql stops and exits non-zero.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { projectRoot } from '../src/paths';
import { createTestDatabase, fingerprint, foreignData } from './helpers/db';

const sqlDir = path.join(projectRoot, 'test', 'sql');
const scripts = fs.readdirSync(sqlDir).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();

t.test('psql checks', async (t) => {
  t.ok(scripts.length >= 7, 'the psql checks are present');
  const db = await createTestDatabase(t);
  // The scripts must run on a database that already holds other people's
  // data, and leave it exactly as it was.
  const seed = new pg.Client({ connectionString: db.url });
  await seed.connect();
  await seed.query(foreignData);
  await seed.end();
  const before = await fingerprint(db.url);
  t.ok(Number(before['app_public.messages']!.split(' ')[0]) > 1000, 'the database holds other users\' data');
  // A long reader holds ACCESS SHARE on every table of the service while
  // the scripts run, and each script may wait at most 5 s for a lock: a
  // script that took more than ROW EXCLUSIVE (DDL on a service table, as
  // CREATE POLICY once did) would queue behind the reader, and every
  // request behind it, so it fails here instead.
  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  t.teardown(() => reader.end());
  await reader.query('begin');
  const { rows: tables } = await reader.query<{ name: string }>(
    `select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname in ('app_public', 'app_private')`);
  for (const { name } of tables) await reader.query(`select 1 from ${name} limit 1`);
  for (const script of scripts) {
    await t.test(script, async (t) => {
      const text = fs.readFileSync(path.join(sqlDir, script), 'utf8');
      const plan = Number(/^-- plan: (\d+)/m.exec(text)?.[1]);
      t.ok(plan > 0, 'the script declares its plan');
      const result = spawnSync(
        'psql',
        ['-X', '-q', '-v', `visitor=${db.visitorRole}`, '-v', `authenticator=${process.env.SIGNALBOX_TEST_AUTHENTICATOR ?? 'signalbox_authenticator'}`, '-d', db.url, '-f', path.join('test', 'sql', script)],
        { cwd: projectRoot, encoding: 'utf8', env: { ...process.env, PGOPTIONS: '-c lock_timeout=5s' } },
      );
      // One assertion per script (its checks are counted, not echoed as
      // passes): psql exits 0 only if no check raised, and every planned
      // check printed its ok line.
      const oks = result.stdout.split('\n').filter((line) => line.startsWith('ok - '));
      t.equal(result.status, 0, `psql exits 0${result.stderr ? `: ${result.stderr.trim()}` : ''}`);
      t.equal(oks.length, plan, `all ${plan} checks passed:\n  ${oks.map((l) => l.slice(5)).join('\n  ')}`);
    });
  }
  const { rows: [held] } = await reader.query(
    `select count(*)::int as n from pg_locks where pid = pg_backend_pid() and mode = 'AccessShareLock' and relation is not null`);
  t.ok(held.n >= tables.length, 'the reader held its locks on every table throughout, and was never blocked');
  await reader.query('commit');
  t.strictSame(await fingerprint(db.url), before, 'every table is byte-for-byte as it was: the scripts touched only their own rows');
});
