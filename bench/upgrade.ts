/**
 * `npm run bench:upgrade [-- --messages N] [--out FILE]`: the groups
 * migration (000020) on a database of N (default 1,000,000) messages, as a
 * deployment runs it (one transaction): its wall time, each statement's
 * time, and how long a reader of messages waits meanwhile (ALTER TABLE
 * takes ACCESS EXCLUSIVE until COMMIT: the lock a request would meet).
 *
 * The database is migrated to 000019, then filled straight in SQL with the
 * message triggers off (the derived columns written as the triggers would
 * for top-level messages: thread_root_id = id), analysed, and 000020
 * applied with psql, timed statement by statement (\timing). Results go
 * to bench/upgrade.json; docs/groups.md and REPORT.md quote them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { projectRoot } from '../src/paths';
import { argValue, log, makeUsers, scratchDatabase } from './lib';

const MESSAGES = Number(argValue('--messages') ?? 1_000_000);
const OUT = path.resolve(argValue('--out') ?? path.join(projectRoot, 'bench', 'upgrade.json'));
const DB = 'signalbox_bench_upgrade';
const MIGRATION = '000020-';

export type UpgradeBench = {
  date: string;
  command: string;
  messages: number;
  pairs: number;
  tableMiB: number;
  seconds: number;
  readerWaitSeconds: number;
  steps: { statement: string; ms: number }[];
};

async function main(): Promise<void> {
  // A copy of the migrations without 000020 (and anything after it).
  const committed = path.join(projectRoot, 'migrations', 'committed');
  const files = fs.readdirSync(committed).filter((f) => f.endsWith('.sql')).sort();
  const upgrade = files.find((f) => f.startsWith(MIGRATION));
  if (!upgrade) throw new Error(`no ${MIGRATION} migration`);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'upgrade-'));
  fs.mkdirSync(path.join(folder, 'committed'));
  for (const f of files.slice(0, files.indexOf(upgrade))) fs.copyFileSync(path.join(committed, f), path.join(folder, 'committed', f));
  fs.writeFileSync(path.join(folder, 'current.sql'), '');
  const { url, drop } = await scratchDatabase(DB, folder);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    log(`filling ${MESSAGES.toLocaleString('en-US')} messages between 1,000 users (triggers off)`);
    const users = await makeUsers(client, 1000);
    const first = users[0]!.id;
    await client.query('alter table app_public.messages disable trigger user');
    await client.query(
      `insert into app_public.messages (id, sender_id, receiver_id, content, sent_at, thread_root_id, read, read_at)
       overriding system value
       select g, $1::bigint + (g * 7919::bigint) % 1000, $1::bigint + (g * 104729::bigint + 1 + g / 997) % 1000,
              'message number ' || g || ' of the upgrade bench', now() - (($2::int - g) * interval '1 second'), g,
              g % 3 = 0, case when g % 3 = 0 then now() end
         from generate_series(1, $2::int) g`,
      [first, MESSAGES],
    );
    await client.query(`select setval(pg_get_serial_sequence('app_public.messages', 'id'), $1)`, [MESSAGES]);
    await client.query('alter table app_public.messages enable trigger user');
    await client.query('vacuum analyze app_public.messages');
    const size = await client.query<{ mib: number; pairs: number }>(
      `select pg_total_relation_size('app_public.messages') / 1048576.0 as mib,
              (select count(*) from (select distinct user_low, user_high from app_public.messages) p)::int as pairs`);

    // A reader of messages beside the migration: how long it waits.
    const reader = new pg.Client({ connectionString: url });
    await reader.connect();
    log(`applying ${upgrade}`);
    const started = Date.now();
    const visitor = loadConfig({ ...process.env, DATABASE_URL: undefined }).DATABASE_VISITOR;
    const child = spawn('psql', ['-X', '-e', '-v', 'ON_ERROR_STOP=1', '-v', `DATABASE_VISITOR=${visitor}`, '--single-transaction',
      '-c', '\\timing on', '-f', path.join(committed, upgrade), '-d', url]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // The reader arrives once the migration holds its lock.
    await new Promise((r) => setTimeout(r, 300));
    const readerStart = Date.now();
    const waited = reader.query('select count(*) from app_public.messages where id = 1').then(() => (Date.now() - readerStart) / 1000);
    const result = { status: await status, stdout, stderr };
    const seconds = (Date.now() - started) / 1000;
    const readerWaitSeconds = await waited;
    await reader.end();
    if (result.status !== 0) throw new Error(`migration failed: ${result.stderr}`);
    // psql -e echoes each statement before its "Time:" line.
    const steps: { statement: string; ms: number }[] = [];
    let statement = '';
    for (const line of result.stdout.split('\n')) {
      const time = /^Time: ([\d.]+) ms/.exec(line);
      if (time) {
        if (Number(time[1]) >= 50) steps.push({ statement: statement.replace(/\s+/g, ' ').trim().slice(0, 120), ms: Number(time[1]) });
        statement = '';
      } else if (!/^(--|\s*$)/.test(line) && statement.length < 400) {
        statement += ` ${line}`;
      }
    }
    const out: UpgradeBench = {
      date: new Date().toISOString(),
      command: `npm run bench:upgrade -- ${process.argv.slice(2).join(' ')}`.trim(),
      messages: MESSAGES,
      pairs: size.rows[0]!.pairs,
      tableMiB: Math.round(Number(size.rows[0]!.mib)),
      seconds,
      readerWaitSeconds,
      steps,
    };
    fs.writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
    log(`migration ${seconds.toFixed(1)} s; a reader waited ${readerWaitSeconds.toFixed(1)} s; wrote ${path.relative(projectRoot, OUT)}`);
  } finally {
    await client.end();
    await drop();
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
