/**
 * `npm run bench:retention`: the lock order and the prune, measured.
 *
 * 1. Deadlocks: the four races of test/lock-order.test.ts (bench/race.ts:
 *    1,000 API-shaped pairs each, plain connections, no retry,
 *    deadlock_timeout 50 ms) on the schema before migration 000014 (the
 *    committed migrations up to 000013) and on the current one, in the
 *    same run: 40P01 seen by clients, pg_stat_database.deadlocks, time.
 * 2. The prune under load: a database holding old rows of every kind the
 *    prune deletes; sends to the API at 4 connections for 10 s alone, and
 *    for 10 s with `call app_private.prune()` running beside them: the
 *    sends' p50/p99 both ways, the prune's time and rows per second.
 *
 * Writes bench/retention.json; REPORT.md quotes it. Local server only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { migrationsFolder, projectRoot } from '../src/paths';
import { deadlockCount, lockOrderScenarios } from './race';
import { autocannonLoad, log, makeUsers, scratchDatabase, sleep, startServer, stopServer, type Load } from './lib';

export type RetentionBench = {
  date: string;
  command: string;
  deadlocks: { schema: string; scenarios: { name: string; pairs: number; deadlocksSeen: number; otherErrors: Record<string, number>; ms: number }[]; pgStatDeadlocks: number }[];
  prune: {
    seeded: { liveEvents: number; sessions: number; notifications: number; idempotencyKeys: number };
    alone: Load;
    withPrune: Load;
    pruneMs: number;
    deleted: Record<string, number>;
    rowsPerSecond: number;
    batches: number;
  };
};

const visitor = loadConfig({}).DATABASE_VISITOR;

/** The committed migrations up to `last`, in a folder of their own (the schema before a change). */
function migrationsUpTo(last: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-migrations-'));
  fs.mkdirSync(path.join(dir, 'committed'));
  for (const file of fs.readdirSync(path.join(migrationsFolder, 'committed'))) {
    if (file.slice(0, 6) <= last) fs.copyFileSync(path.join(migrationsFolder, 'committed', file), path.join(dir, 'committed', file));
  }
  return dir;
}

async function deadlocks(): Promise<RetentionBench['deadlocks']> {
  const out: RetentionBench['deadlocks'] = [];
  for (const [schema, folder] of [['before (migrations up to 000013)', migrationsUpTo('000013')], ['after (000014)', undefined]] as const) {
    const db = await scratchDatabase('signalbox_bench_locks', folder);
    try {
      log(`deadlocks: ${schema}`);
      const before = await deadlockCount(db.url);
      // One pair at a time: on the old schema four lanes on one message deadlock
      // across lanes too (over 1,000 in the first 300 pairs), and the run takes
      // half an hour. The test (after only) races four pairs at once.
      const scenarios = await lockOrderScenarios(db.url, visitor, 1);
      const pgStat = (await deadlockCount(db.url)) - before;
      out.push({
        schema,
        pgStatDeadlocks: pgStat,
        scenarios: scenarios.map((s) => {
          const other: Record<string, number> = {};
          for (const code of s.seen) if (code !== '40P01') other[code] = (other[code] ?? 0) + 1;
          return { name: s.name, pairs: 1000, deadlocksSeen: s.seen.filter((c) => c === '40P01').length, otherErrors: other, ms: Math.round(s.ms) };
        }),
      });
      for (const s of out.at(-1)!.scenarios) log(`  ${s.name}: ${s.deadlocksSeen} deadlocks, ${s.ms} ms`);
    } finally {
      await db.drop();
    }
  }
  return out;
}

async function pruneUnderLoad(): Promise<RetentionBench['prune']> {
  const db = await scratchDatabase('signalbox_bench_prune');
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const [alice, bob, carol] = await makeUsers(admin, 3);
    log('prune: seeding old rows');
    // 100,000 read notifications (and their messages), old.
    await admin.query(`insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, 'old ' || g from generate_series(1, 100000) g`, [carol!.id, bob!.id]);
    await admin.query(`update app_public.messages set read = true where sender_id = $1`, [carol!.id]);
    await admin.query(`update app_public.notifications set created_at = now() - interval '100 days' where user_id = $1`, [bob!.id]);
    // 300,000 old live events over 1,000 recipients.
    await admin.query(`insert into app_public.live_events (user_id, seq, type, message_ids, message_count, created_at)
      select 1000000 + g % 1000, g, 'message.created', array[g::bigint], 1, now() - interval '8 days' from generate_series(1, 300000) g`);
    await admin.query(`insert into app_private.sessions (token_hash, user_id, created_at, expires_at)
      select sha256(g::text::bytea), $1, now() - interval '40 days', now() - interval '10 days' from generate_series(1, 100000) g`, [carol!.id]);
    const { rows: [m] } = await admin.query<{ id: string }>(`select min(id) as id from app_public.messages`);
    await admin.query(`insert into app_public.idempotency_keys (sender_id, key, request_hash, message_id, created_at)
      select $1, 'k' || g, '\\x00', $2, now() - interval '2 days' from generate_series(1, 100000) g`, [carol!.id, m!.id]);
    await admin.query('vacuum analyze');
    const seeded = { liveEvents: 300_000, sessions: 100_000, notifications: 100_000, idempotencyKeys: 100_000 };

    const port = 39_000 + Math.floor(Math.random() * 1000);
    const server = await startServer(db.url, port);
    try {
      const send = { port, path: '/messages', method: 'POST' as const, body: JSON.stringify({ receiverId: bob!.id, content: 'under the prune' }), token: alice!.token, connections: 4, seconds: 10 };
      await autocannonLoad({ ...send, seconds: 3 }); // warm-up
      log('prune: sends alone');
      const alone = await autocannonLoad(send);
      log('prune: sends beside the prune');
      const loading = autocannonLoad(send);
      await sleep(1000);
      const pruner = new pg.Client({ connectionString: db.url });
      await pruner.connect();
      const t0 = performance.now();
      const { rows: [run] } = await pruner.query<{ run_id: string }>(`call app_private.prune()`);
      const pruneMs = performance.now() - t0;
      await pruner.end();
      const withPrune = await loading;
      const { rows: [audit] } = await admin.query(`select sessions, idempotency_keys, live_events, notifications from app_private.prune_runs where id = $1`, [run!.run_id]);
      const deleted = Object.fromEntries(Object.entries(audit).map(([k, v]) => [k, Number(v)]));
      const total = Object.values(deleted).reduce((a, b) => a + b, 0);
      const batches = Object.values(deleted).reduce((a, n) => a + Math.floor(n / 10_000) + 1, 0);
      log(`prune: ${total} rows in ${pruneMs.toFixed(0)} ms; sends p99 ${alone.p99} ms alone, ${withPrune.p99} ms beside it`);
      return { seeded, alone, withPrune, pruneMs: Math.round(pruneMs), deleted, rowsPerSecond: Math.round(total / (pruneMs / 1000)), batches };
    } finally {
      await stopServer(server);
    }
  } finally {
    await admin.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const result: RetentionBench = {
    date: new Date().toISOString(),
    command: 'npm run bench:retention',
    deadlocks: await deadlocks(),
    prune: await pruneUnderLoad(),
  };
  const file = path.join(projectRoot, 'bench', 'retention.json');
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${path.relative(projectRoot, file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
