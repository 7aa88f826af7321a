/**
 * Backup and restore as docs/operations.md tells a DBA to do them: a data-only
 * dump restored into a migrated database (the triggers and foreign keys
 * off for the restore, graphile-migrate's and graphile-worker's own schemas
 * left out), and a full dump restored into a new database after
 * db/roles.sql. Every table compares equal, and the restored database
 * takes new writes (its identity sequences came along).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { adminQuery, withDatabase } from '../src/db/admin';
import { projectRoot } from '../src/paths';
import { adminClient, createTestDatabase, fingerprint, foreignData } from './helpers/db';

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: projectRoot, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
}

async function populated(t: Parameters<typeof createTestDatabase>[0]) {
  const source = await createTestDatabase(t);
  const admin = await adminClient(t, source.url);
  await admin.query(foreignData);
  // Every kind of row: prune audit, deletion audit, idempotency keys, horizons.
  await admin.query(`insert into app_public.idempotency_keys (sender_id, key, request_hash, message_id)
    select sender_id, 'k' || id, '\\x00', id from app_public.messages where id % 7 = 0`);
  await admin.query(`delete from app_public.users where username = 'someone_7'`);
  await admin.query(`update app_public.live_events set created_at = now() - interval '8 days' where seq % 5 = 0`);
  await admin.query(`call app_private.prune()`);
  return source;
}

t.test('data-only dump restored into a migrated database: every table equal, and it takes writes', async (t) => {
  const source = await populated(t);
  const target = await createTestDatabase(t); // migrated, empty
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-dump-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'data.dump');
  run('pg_dump', ['--data-only', '--format=custom', '--exclude-schema=graphile_migrate', '--exclude-schema=graphile_worker', '--file', file, source.url]);
  run('pg_restore', ['--data-only', '--disable-triggers', '--single-transaction', '--exit-on-error', '--dbname', target.url, file]);
  t.strictSame(await fingerprint(target.url), await fingerprint(source.url), 'every table of app_public and app_private is equal');

  const admin = await adminClient(t, target.url);
  const { rows: [m] } = await admin.query(`insert into app_public.messages (sender_id, receiver_id, content)
    select min(id), max(id), 'after the restore' from app_public.users returning id, thread_root_id`);
  t.equal(m.id, m.thread_root_id, 'a new message gets a fresh id and its triggers run');
  const { rows: [n] } = await admin.query(`select count(*)::int as n from app_public.notifications where message_id = $1`, [m.id]);
  t.equal(n.n, 1, 'and notifies');
});

t.test('full dump restored into a new database after db/roles.sql: equal, migrations up to date', async (t) => {
  const source = await populated(t);
  const serverUrl = process.env.SIGNALBOX_TEST_SERVER_URL!;
  const name = `${source.name}_restored`;
  t.teardown(() => adminQuery(serverUrl, `drop database if exists ${name} with (force)`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-dump-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'full.dump');
  run('pg_dump', ['--format=custom', '--file', file, source.url]);
  run('psql', ['-X', '-q', '-v', `visitor=${source.visitorRole}`, '-f', 'db/roles.sql', serverUrl]);
  await adminQuery(serverUrl, `create database ${name}`);
  const restored = withDatabase(serverUrl, name);
  run('pg_restore', ['--exit-on-error', '--single-transaction', '--dbname', restored, file]);
  t.strictSame(await fingerprint(restored), await fingerprint(source.url), 'every table equal');
  const admin = await adminClient(t, restored);
  const { rows: [g] } = await admin.query(
    `select has_table_privilege($1, 'app_public.messages', 'select') as can_read`, [source.visitorRole]);
  t.ok(g.can_read, 'the request role\'s grants came along');
  const { rows: [m] } = await admin.query(`select count(*)::int as n from graphile_migrate.migrations`);
  t.ok(m.n >= 14, 'graphile-migrate\'s record came along: the service will not migrate again');
});
