/**
 * Retention (app_private.prune, src/jobs): what goes, what stays, batches,
 * the audit row, and the worker that runs it on a schedule. A stream
 * resumed from before what was pruned is in test/deletion.test.ts.
 */
import pg from 'pg';
import t from 'tap';
import { loadConfig } from '../src/config';
import { createDatabasePool } from '../src/db/pool';
import { migrateWorkerSchema, PRUNE_TASK, startWorker } from '../src/jobs/worker';
import { prune, type PruneSettings } from '../src/jobs/prune';
import { adminClient, createTestDatabase } from './helpers/db';
import { within } from './helpers/time';

const defaults: PruneSettings = loadConfig({});

/** Two users and one of each kind of row, old and new; returns their ids. */
async function seed(admin: pg.Client) {
  const { rows: [a, b] } = await admin.query<{ id: string }>(
    `insert into app_public.users (username) values ('keep_a'), ('keep_b') returning id`);
  const [alice, bob] = [Number(a!.id), Number(b!.id)];
  const { rows: msgs } = await admin.query<{ id: string }>(
    `insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, 'm' || g from generate_series(1, 4) g returning id`,
    [alice, bob]);
  const [m1, m2, m3, m4] = msgs.map((m) => Number(m.id)) as [number, number, number, number];
  await admin.query(`insert into app_private.sessions (token_hash, user_id, created_at, expires_at) values
    ('\\x01', $1, now() - interval '2 days', now() - interval '1 second'),
    ('\\x02', $1, now() - interval '2 days', now() + interval '1 day')`, [alice]);
  await admin.query(`insert into app_public.idempotency_keys (sender_id, key, request_hash, message_id, created_at) values
    ($1, 'old', '\\x00', $2, now() - interval '25 hours'), ($1, 'new', '\\x00', $3, now() - interval '23 hours')`, [alice, m1, m2]);
  // Notifications: m1 read long ago (goes), m2 unread and old (stays),
  // m3 read recently (stays), m4 unread (stays).
  await admin.query(`update app_public.messages set read = true where id in ($1, $2)`, [m1, m3]);
  await admin.query(`update app_public.notifications set created_at = now() - interval '91 days' where message_id in ($1, $2)`, [m1, m2]);
  // Live events: the ones of m1 are eight days old.
  await admin.query(`update app_public.live_events set created_at = now() - interval '8 days' where $1 = any(message_ids)`, [m1]);
  await admin.query(`insert into app_private.deleted_accounts (former_user_id, deleted_at, self_service) values
    (-1, now() - interval '366 days', true), (-2, now() - interval '1 day', false)`);
  return { alice, bob, m1, m2, m3, m4 };
}

t.test('the prune deletes what is past its retention and nothing else, and audits the run', async (t) => {
  const db = await createTestDatabase(t);
  const admin = await adminClient(t, db.url);
  const { alice, bob, m1, m2, m3, m4 } = await seed(admin);
  const { rows: [events] } = await admin.query(`select count(*)::int as n, count(*) filter (where $1 = any(message_ids))::int as old from app_public.live_events`, [m1]);
  const pool = await createDatabasePool(db.url, { maximumPoolSize: 1 });
  t.teardown(() => pool.end());

  const run = await prune(pool, defaults);
  t.match(run, { sessions: 1, idempotencyKeys: 1, liveEvents: events.old, notifications: 1, deletedAccounts: 1 }, 'the counts of what went');
  const left = async (q: string, p: unknown[] = []) => (await admin.query(q, p)).rows.map((r) => Object.values(r)[0]);
  t.strictSame(await left(`select encode(token_hash, 'hex') from app_private.sessions order by 1`), ['02'], 'the live session stays');
  t.strictSame(await left(`select key from app_public.idempotency_keys`), ['new'], 'a key younger than 24 h stays');
  t.strictSame(await left(`select message_id::int from app_public.notifications order by 1`), [m2, m3, m4],
    'the old unread, the recent read and the unread notifications stay');
  t.equal(await left(`select count(*)::int from app_public.live_events where $1 = any(message_ids)`, [m1]).then((r) => r[0]), 0, 'old live events go');
  t.equal(await left(`select count(*)::int from app_public.live_events`).then((r) => r[0]), events.n - events.old, 'newer ones stay');
  t.strictSame(await left(`select former_user_id::int from app_private.deleted_accounts`), [-2], 'a recent deletion audit stays');
  const horizons = await left(`select user_id::int from app_private.stream_horizons order by 1`);
  t.strictSame(horizons, [alice, bob].sort((x, y) => x - y), 'both users\' stream horizons moved (their old events went)');
  const { rows: [audit] } = await admin.query(`select * from app_private.prune_runs where id = $1`, [run.id]);
  t.match(audit.settings, { live_events_retention: '7 days', notifications_retention: '90 days', batch_size: 10000 }, 'the audit row says what was applied');
  t.ok(audit.finished_at >= audit.started_at);

  const again = await prune(pool, defaults);
  t.match(again, { sessions: 0, idempotencyKeys: 0, liveEvents: 0, notifications: 0, deletedAccounts: 0 }, 'a second run finds nothing');
});

t.test('batches: small ones first, then a large run in the same session, each committed on its own', async (t) => {
  const db = await createTestDatabase(t);
  const admin = await adminClient(t, db.url);
  await admin.query(`insert into app_public.users (username) values ('batch_user')`);
  const expire = (n: number) => admin.query(`insert into app_private.sessions (token_hash, user_id, created_at, expires_at)
    select sha256(random()::text::bytea), (select id from app_public.users), now() - interval '2 days', now() - interval '1 hour'
      from generate_series(1, ${n})`);
  const pool = await createDatabasePool(db.url, { maximumPoolSize: 1 });
  t.teardown(() => pool.end());
  await expire(3);
  t.equal((await prune(pool, { ...defaults, PRUNE_BATCH_SIZE: 2 })).sessions, 3, '3 rows in batches of 2');
  // The same session, now 25,000 rows: the plans cached for 3 must serve.
  await expire(25_000);
  const big = await prune(pool, defaults);
  t.equal(big.sessions, 25_000, '25,000 rows in batches of 10,000');
  const { rows: [n] } = await admin.query(`select count(*)::int as n from app_private.sessions`);
  t.equal(n.n, 0);
  // Each batch committed: the procedure's transactions are visible as such.
  const { rows: [x] } = await admin.query(`select count(*)::int as n from app_private.prune_runs`);
  t.equal(x.n, 2, 'one audit row per run');
  await t.rejects(
    pool.query((await import('slonik')).sql.unsafe`call app_private.prune(batch_size => 20000)`),
    'a batch over 10,000 is refused',
  );
});

t.test('the worker registers the schedule and runs the prune as a job', async (t) => {
  const db = await createTestDatabase(t);
  await migrateWorkerSchema(db.url);
  const pool = await createDatabasePool(db.url, { maximumPoolSize: 1 });
  t.teardown(() => pool.end());
  const runs: number[] = [];
  const logged: string[] = [];
  const log = { info: (_: object, m: string) => logged.push(m), warn: (_: object, m: string) => logged.push(m), error: (_: object, m: string) => logged.push(m) };
  t.equal(await startWorker({ connectionString: db.url, pool, schedule: 'off', settings: defaults, log }), null, 'off: no worker');
  const worker = await startWorker({ connectionString: db.url, pool, schedule: '17 * * * *', settings: defaults, log, onPrune: (r) => { if (r) runs.push(r.id); } });
  t.ok(worker, 'a worker');
  t.teardown(() => worker?.stop());
  const admin = await adminClient(t, db.url);
  // graphile-worker records each crontab identifier it schedules.
  const known = async () => (await admin.query(`select identifier from graphile_worker._private_known_crontabs`)).rows.map((r) => r.identifier);
  await within((async () => { while (!(await known()).includes(PRUNE_TASK)) await new Promise((r) => setTimeout(r, 100)); })(), 10_000, 'crontab registered');
  t.ok((await known()).includes(PRUNE_TASK), 'the prune is on the schedule');
  await admin.query(`select graphile_worker.add_job($1)`, [PRUNE_TASK]);
  await within((async () => { while (runs.length === 0) await new Promise((r) => setTimeout(r, 50)); })(), 10_000, 'the job ran');
  const { rows: [audit] } = await admin.query(`select count(*)::int as n from app_private.prune_runs where id = $1`, [runs[0]]);
  t.equal(audit.n, 1, 'the job\'s run is audited');
  t.ok(logged.includes('retention prune done'), 'and logged');
});

t.test('retention settings are validated', async (t) => {
  t.throws(() => loadConfig({ LIVE_EVENTS_RETENTION: '7' }), /LIVE_EVENTS_RETENTION/);
  t.throws(() => loadConfig({ NOTIFICATIONS_RETENTION: "1 day'; drop table x" }), /NOTIFICATIONS_RETENTION/);
  t.throws(() => loadConfig({ PRUNE_BATCH_SIZE: '20000' }), /PRUNE_BATCH_SIZE/);
  t.throws(() => loadConfig({ PRUNE_SCHEDULE: 'hourly' }), /PRUNE_SCHEDULE/);
  t.match(loadConfig({ LIVE_EVENTS_RETENTION: '36 hours', PRUNE_SCHEDULE: 'off' }), { LIVE_EVENTS_RETENTION: '36 hours', PRUNE_SCHEDULE: 'off' });
});
