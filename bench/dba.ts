/**
 * `npm run bench:dba`: the DBA sequence of issue 10, in ONE session per
 * run (so PL/pgSQL's plan cache carries over from the small statements to
 * the bulk ones, as it does for a DBA in psql): 1-row insert, N-row
 * INSERT … SELECT, 1-row update, N-row mark-read, N-row content edit,
 * delete of the user owning them. Each at N = 10,000 and 100,000, with the
 * signalbox triggers on, and the same statements with them disabled
 * (`disable trigger user`: foreign keys and their cascades stay on).
 * Writes bench/dba.json; REPORT.md quotes it. Local server only.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { adminQuery } from '../src/db/admin';
import { projectRoot } from '../src/paths';
import { scratchDatabase } from './lib';

const DB = 'signalbox_bench_dba';
const SIZES = [10_000, 100_000];

type Step = { statement: string; rows: number; ms: number };

async function sequence(url: string, n: number, triggers: boolean, run: number): Promise<Step[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const steps: Step[] = [];
  const timed = async (statement: string, sql: string, params: unknown[] = []) => {
    const t0 = performance.now();
    const result = await client.query(sql, params);
    steps.push({ statement, rows: result.rowCount ?? 0, ms: performance.now() - t0 });
  };
  try {
    if (!triggers) await client.query('alter table app_public.messages disable trigger user');
    const { rows } = await client.query<{ id: string }>(
      `insert into app_public.users (username) values ($1), ($2) returning id`, [`dba_a_${run}`, `dba_b_${run}`]);
    const [a, b] = rows.map((r) => Number(r.id));
    // With the triggers off nothing fills thread_root_id (NOT NULL): the
    // statement supplies what the trigger would (the row's own id).
    const insert = triggers
      ? `insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, 'bulk ' || g from generate_series(1, $3::int) g`
      : `insert into app_public.messages (id, thread_root_id, sender_id, receiver_id, content) overriding system value
         select n, n, $1, $2, 'bulk ' || g
           from (select nextval(pg_get_serial_sequence('app_public.messages', 'id')) as n, g from generate_series(1, $3::int) g) s`;
    await timed('1-row insert', insert, [a, b, 1]);
    await timed(`${n}-row INSERT … SELECT`, insert, [a, b, n]);
    // Off: read_at too, which the trigger would stamp (a CHECK ties them).
    const markRead = triggers ? 'set read = true' : 'set read = true, read_at = now()';
    await timed('1-row update (read)', `update app_public.messages ${markRead} where id = (select min(id) from app_public.messages where sender_id = $1)`, [a]);
    await timed(`${n}-row mark-read`, `update app_public.messages ${markRead} where receiver_id = $1 and not read`, [b]);
    await timed(`${n}-row content edit`, `update app_public.messages set content = content || ' (edited)' where sender_id = $1 and content like 'bulk %'`, [a]);
    await timed('delete the user owning them', `delete from app_public.users where id = $1`, [a]);
    await client.query('delete from app_public.users where id = $1', [b]);
  } finally {
    if (!triggers) await client.query('alter table app_public.messages enable trigger user');
    await client.end();
  }
  return steps;
}

async function main(): Promise<void> {
  const { url, drop } = await scratchDatabase(DB);
  const results: { rows: number; triggers: Step[]; noTriggers: Step[] }[] = [];
  let run = 0;
  try {
    for (const n of SIZES) {
      // Interleaved, median of three of each.
      const on: Step[][] = [];
      const off: Step[][] = [];
      for (let i = 0; i < 3; i++) {
        on.push(await sequence(url, n, true, run++));
        off.push(await sequence(url, n, false, run++));
        await adminQuery(url, 'vacuum analyze');
      }
      const median = (runs: Step[][]) =>
        runs[0]!.map((step, k) => ({ ...step, ms: runs.map((r) => r[k]!.ms).sort((x, y) => x - y)[1]! }));
      results.push({ rows: n, triggers: median(on), noTriggers: median(off) });
      for (const [k, s] of median(on).entries()) {
        const o = median(off)[k]!;
        process.stdout.write(`${n}: ${s.statement}: ${s.ms.toFixed(1)} ms on, ${o.ms.toFixed(1)} ms off (${(s.ms / o.ms).toFixed(2)}×)\n`);
      }
    }
  } finally {
    await drop();
  }
  fs.writeFileSync(path.join(projectRoot, 'bench', 'dba.json'), `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
