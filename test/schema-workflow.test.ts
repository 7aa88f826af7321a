/**
 * The schema workflow: migrations/schema.sql is the current dump of what
 * the committed migrations build (CI fails when it is stale), and
 * `npm run gm` works on a fresh machine without ever touching the
 * service's DATABASE_URL or resetting a database that is not a dev one.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { adminQuery, withDatabase } from '../src/db/admin';
import { projectRoot } from '../src/paths';
import { dumpSchema, schemaFile } from '../scripts/dump-schema';
import { createTestDatabase } from './helpers/db';

function majorOf(versionOutput: string): number {
  return Number(/(\d+)(?:\.\d+)?/.exec(versionOutput)?.[1]);
}

t.test('migrations/schema.sql is the dump of the committed migrations', async (t) => {
  const db = await createTestDatabase(t);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query<{ v: string }>('show server_version');
  await client.end();
  const dumpMajor = majorOf(spawnSync('pg_dump', ['--version'], { encoding: 'utf8' }).stdout);
  if (dumpMajor < majorOf(rows[0]!.v)) {
    await t.skip(`pg_dump ${dumpMajor} cannot dump a PostgreSQL ${rows[0]!.v} server (CI runs both at 15)`, async () => {});
    return;
  }
  const committed = fs.readFileSync(schemaFile, 'utf8').replace(/^(--[^\n]*\n)+\n/, '');
  t.ok(committed.includes('CREATE TRIGGER _500_notify_receiver'), 'the dump shows the triggers');
  t.ok(committed.includes('CREATE POLICY select_reader'), 'and the policies');
  t.equal(dumpSchema(db.url), committed, 'schema.sql is current: run `npm run gm -- migrate` (or commit) and commit the file');
});

const gm = (args: string[], env: Record<string, string | undefined>) =>
  spawnSync(process.execPath, [path.join(projectRoot, 'dist', 'scripts', 'gm.js'), ...args], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

t.test('npm run gm works against a fresh dev database and never on DATABASE_URL', async (t) => {
  const serverUrl = process.env.SIGNALBOX_TEST_SERVER_URL!;
  const dev = `signalbox_test_${process.pid}_gm_dev`;
  const drop = () =>
    adminQuery(serverUrl, `drop database if exists ${dev} with (force)`, `drop database if exists ${dev}_shadow with (force)`);
  await drop();
  t.teardown(drop);
  // A scratch copy of schema.sql: the afterAllMigrations hook must not
  // rewrite the committed one from a test.
  const scratch = path.join(projectRoot, 'dist', `schema-${process.pid}.sql`);
  fs.copyFileSync(schemaFile, scratch);
  t.teardown(() => fs.rmSync(scratch, { force: true }));

  // DATABASE_URL points at a database that must never be touched.
  const service = await createTestDatabase(t);
  const env = { GM_DATABASE_URL: withDatabase(serverUrl, dev), DATABASE_URL: service.url, SIGNALBOX_SCHEMA_FILE: scratch };
  const status = gm(['status'], env);
  // graphile-migrate's status exits 1 while committed migrations are pending.
  t.equal(status.status, 1, `gm status answers on a fresh machine: migrations pending${status.stderr ? ` (${status.stderr.trim()})` : ''}`);
  t.match(status.stderr, new RegExp(`created database ${dev}\\b`), 'it created the dev database');
  t.match(status.stderr, new RegExp(`created database ${dev}_shadow`), 'and its shadow');
  t.match(status.stdout, /000003/, 'status lists the committed migrations still to apply');
  const migrated = gm(['migrate'], env);
  t.equal(migrated.status, 0, `gm migrate applies them${migrated.status ? `: ${migrated.stderr}` : ''}`);
  t.equal(fs.readFileSync(scratch, 'utf8'), fs.readFileSync(schemaFile, 'utf8'), 'its afterAllMigrations hook wrote the same schema dump');
  t.equal(gm(['status'], env).status, 0, 'and status is then 0: up to date');
  const client = new pg.Client({ connectionString: service.url });
  await client.connect();
  const { rows } = await client.query(`select count(*)::int as n from pg_database where datname = current_database()`);
  t.equal(rows[0].n, 1);
  await client.end();

  const refused = gm(['reset', '--erase'], { GM_DATABASE_URL: service.url });
  t.equal(refused.status, 2, 'reset refuses a database whose name does not end in _dev');
  t.match(refused.stderr, /refusing to reset/);
  const stillThere = new pg.Client({ connectionString: service.url });
  await stillThere.connect();
  const { rows: tables } = await stillThere.query(`select count(*)::int as n from app_public.users`);
  t.equal(tables[0].n, 0, 'and the service database is intact');
  await stillThere.end();
});
