/**
 * `npm run bench:search [-- --messages N]`: issue 14's numbers.
 *
 * 1. Search at 1,000,000 messages: p50/p99 of the search query function
 *    (as the caller, under row-level security, through the same pool code
 *    as the API) for a rare word, a common word and a phrase, for a heavy
 *    user (100,000 messages) and an ordinary one, beside the same queries
 *    with the GIN index dropped (inside a transaction, rolled back).
 * 2. What a send costs now: single-row autocommit inserts from one
 *    connection, interleaved rounds, on this schema against the schema of
 *    main before the issue (`--before DIR`: a checkout whose migrations
 *    lack the search column and the live-event triggers), and on this
 *    schema with the live-event trigger disabled (the search column's share
 *    is the rest).
 *
 * Results go to bench/search.json; REPORT.md quotes them. Only 127.0.0.1.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { sql } from 'slonik';
import { loadConfig } from '../src/config';
import { adminQuery } from '../src/db/admin';
import { createDatabasePool } from '../src/db/pool';
import { projectRoot } from '../src/paths';
import { searchMessages } from '../src/queries/search';
import { argValue, log, makeUsers, median, percentile, scratchDatabase } from './lib';

const args = process.argv.slice(2);
const MESSAGES = Number(argValue('--messages') ?? 1_000_000);
const BEFORE = argValue('--before');
const CALLS = 200;

type Timing = { p50: number; p99: number; hits: number };
type Row = { query: string; user: string; gin: Timing; noGin: Timing };

async function searchRun(url: string) {
  const dbUrl = url;
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect();
  const users = await makeUsers(admin, 1000);
  const heavy = users[0]!;
  const ordinary = users[500]!;
  const ids = users.map((u) => u.id);
  log(`search: ${MESSAGES.toLocaleString()} messages`);
  const started = Date.now();
  // A vocabulary of 3,000 words with a skewed frequency ("w0" is in most
  // messages, "w2999" in few), one rare word in 50 messages (all sent by the
  // heavy user), a phrase in 1 % of them; a tenth of all messages are the
  // heavy user's.
  await admin.query(`set session_replication_role = replica`); // no triggers: this is the corpus, not a send
  await admin.query(
    `insert into app_public.messages (sender_id, receiver_id, content, thread_root_id, depth)
     select s, case when r = s then $2::bigint else r end,
            (select string_agg('w' || floor(power(random(), 4) * 3000)::int, ' ') from generate_series(1, 8 + (g % 12)) where g > 0)
            || case when g % 20000 = 10 then ' zeppelin' else '' end
            || case when g % 100 = 3 then ' the quarterly budget review' else '' end,
            0, 0
       from (select g,
                    case when g % 10 = 0 then $2::bigint else ($1::bigint[])[1 + floor(random() * 1000)::int] end as s,
                    ($1::bigint[])[1 + floor(random() * 1000)::int] as r
               from generate_series(1, $3::int) g) x`,
    [ids, heavy.id, MESSAGES],
  );
  await admin.query(`update app_public.messages set thread_root_id = id where thread_root_id = 0`);
  await admin.query(`set session_replication_role = origin`);
  await admin.query('vacuum analyze app_public.messages');
  log(`search: corpus built in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const config = loadConfig({ ...process.env, DATABASE_URL: dbUrl });
  const pool = await createDatabasePool(dbUrl, { maximumPoolSize: 2 });
  const queries = [
    { name: 'rare word (zeppelin)', q: 'zeppelin' },
    { name: 'common word (w0)', q: 'w0' },
    { name: 'phrase ("quarterly budget review")', q: '"quarterly budget review"' },
  ];
  // Both variants run alike: one connection, BEGIN, (drop the index), and
  // per call a savepoint, the caller's settings, the query, a rollback to
  // the savepoint; ROLLBACK at the end (the index is back).
  const time = (me: number, q: string, withoutGin: boolean): Promise<Timing> =>
    pool.connect(async (conn) => {
      const ms: number[] = [];
      let hits = 0;
      await conn.query(sql.unsafe`begin`);
      try {
        if (withoutGin) await conn.query(sql.unsafe`drop index app_public.messages_search_idx`);
        const calls = withoutGin ? 40 : CALLS;
        for (let i = 0; i < calls + 5; i++) {
          const t0 = process.hrtime.bigint();
          await conn.query(sql.unsafe`savepoint s`);
          await conn.query(sql.unsafe`select set_config('role', ${config.DATABASE_VISITOR}, true), set_config('signalbox.user_id', ${String(me)}, true)`);
          const r = await searchMessages(conn, me, { q, limit: 20 }, config.SEARCH_RANK_WINDOW);
          await conn.query(sql.unsafe`rollback to savepoint s`);
          if (i >= 5) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
          hits = r.hits.length;
        }
      } finally {
        await conn.query(sql.unsafe`rollback`);
      }
      return { p50: median(ms), p99: percentile(ms, 99), hits };
    });
  const rows: Row[] = [];
  for (const query of queries) {
    for (const [label, user] of [['heavy user (100,000 messages)', heavy], ['ordinary user (~1,800 messages)', ordinary]] as const) {
      const gin = await time(user.id, query.q, false);
      const noGin = await time(user.id, query.q, true);
      rows.push({ query: query.name, user: label, gin, noGin });
      log(`search ${query.name}, ${label}: GIN p50 ${gin.p50.toFixed(2)} p99 ${gin.p99.toFixed(2)} ms (${gin.hits} hits); without ${noGin.p50.toFixed(2)} / ${noGin.p99.toFixed(2)} ms`);
    }
  }
  await pool.end();
  await admin.end();
  return rows;
}

/** µs per single-row autocommit insert on `url`, `n` of them. */
async function insertCost(url: string, n: number, setup?: string, teardown?: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const [a, b] = await makeUsers(client, 2);
    if (setup) await client.query(setup);
    for (let i = 0; i < 100; i++) await client.query('insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3)', [a!.id, b!.id, 'warm up']);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      await client.query('insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3)', [a!.id, b!.id, `a message about the quarterly budget review number ${i}`]);
    }
    const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
    if (teardown) await client.query(teardown);
    return us;
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const after = await scratchDatabase('signalbox_bench_search');
  const before = BEFORE ? await scratchDatabase('signalbox_bench_search_before', path.join(path.resolve(BEFORE), 'migrations')) : null;
  try {
    const cost = { rounds: 5, insertsPerRound: 2000, nowUs: [] as number[], noLiveEventsUs: [] as number[], beforeUs: [] as number[] };
    for (let round = 0; round < cost.rounds; round++) {
      cost.nowUs.push(await insertCost(after.url, cost.insertsPerRound));
      cost.noLiveEventsUs.push(await insertCost(after.url, cost.insertsPerRound,
        'alter table app_public.messages disable trigger _450_announce_live_insert',
        'alter table app_public.messages enable trigger _450_announce_live_insert'));
      if (before) cost.beforeUs.push(await insertCost(before.url, cost.insertsPerRound));
      log(`send cost round ${round + 1}: now ${cost.nowUs.at(-1)!.toFixed(0)} µs, without live events ${cost.noLiveEventsUs.at(-1)!.toFixed(0)} µs${before ? `, before ${cost.beforeUs.at(-1)!.toFixed(0)} µs` : ''}`);
    }
    await adminQuery(after.url, 'truncate app_public.messages cascade');
    const search = await searchRun(after.url);
    const result = {
      date: new Date().toISOString(),
      command: `npm run bench:search -- ${args.join(' ')}`.trim(),
      messages: MESSAGES,
      callsPerTiming: CALLS,
      search,
      sendCost: {
        rounds: cost.rounds,
        insertsPerRound: cost.insertsPerRound,
        nowUs: median(cost.nowUs),
        noLiveEventsUs: median(cost.noLiveEventsUs),
        beforeUs: before ? median(cost.beforeUs) : null,
      },
    };
    fs.writeFileSync(path.join(projectRoot, 'bench', 'search.json'), `${JSON.stringify(result, null, 2)}\n`);
    log('written bench/search.json');
  } finally {
    await after.drop();
    await before?.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
