/**
 * `npm run bench:groups [-- --duration S] [--rounds N] [--out FILE]`:
 * group conversations beside direct ones, each path beside its ceiling
 * (PostgreSQL serving the statements the API sent, recorded off the wire,
 * replayed by pgbench; the same method as bench:ceiling).
 *
 * - Sends: to one user (the baseline), to groups of 10, 100 and 1,000
 *   members, at 1 and 4 connections: req/s, p50, p99, notifications per
 *   second, and the fan-out's cost per member (the group send's p50 over
 *   the direct send's, per member).
 * - A member of 200 groups (each of 5 members and 20 messages, half of
 *   them unread): GET /conversations, uncached (every unread count
 *   computed), p50 and p99.
 *
 * `--only KEYS` measures just those paths and keeps the other rows of --out.
 *
 * Targets (the issue): a send to 100 members within 3× a direct send; the
 * conversation list under 10 ms p99 at 200 groups. Results go to
 * bench/groups.json; REPORT.md quotes them. Only 127.0.0.1 is targeted.
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../src/paths';
import {
  argValue,
  autocannonLoad,
  keepOtherRows,
  log,
  makeUsers,
  median,
  pgbench,
  recordStatements,
  scratchDatabase,
  startServer,
  stopServer,
  type BenchRequest,
  type BenchUser,
} from './lib';
import { pgbenchScript } from './wire';

const OUT = path.resolve(argValue('--out') ?? path.join(projectRoot, 'bench', 'groups.json'));
const DURATION = Number(argValue('--duration') ?? 5);
const ROUNDS = Number(argValue('--rounds') ?? 3);
const PORT = 3994;
const DB = 'signalbox_bench_groups';
const CONNECTIONS = [1, 4];
/** `--only list200,direct`: just those paths (their rows replace those of the same keys in --out). */
const ONLY = argValue('--only')?.split(',');

type Sample = { rps: number; p50: number; p99: number };
export type GroupsBench = {
  date: string;
  command: string;
  machine: { cpus: string; node: string; postgres: string };
  durationSeconds: number;
  rounds: number;
  paths: {
    key: string;
    label: string;
    members: number;
    statements: number;
    runs: { connections: number; api: Sample; ceiling: { tps: number; p50: number } }[];
  }[];
};

type Path = BenchRequest & { key: string; label: string; members: number };

/** A group made by `owner` with these members, straight in SQL as the owner (the API's create_group). */
async function makeGroup(client: pg.Client, owner: BenchUser, title: string, members: BenchUser[]): Promise<number> {
  await client.query('begin');
  try {
    await client.query(`select set_config('signalbox.user_id', $1, true)`, [String(owner.id)]);
    const { rows } = await client.query<{ id: string }>('select app_public.create_group($1, $2::bigint[]) as id', [title, members.map((m) => m.id)]);
    await client.query('commit');
    return Number(rows[0]!.id);
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}

async function main(): Promise<void> {
  const { url, drop } = await scratchDatabase(DB);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const results: GroupsBench = {
    date: new Date().toISOString(),
    command: `npm run bench:groups -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
      node: process.version,
      postgres: (await client.query(`select current_setting('server_version') as v`)).rows[0].v,
    },
    durationSeconds: DURATION,
    rounds: ROUNDS,
    paths: [],
  };
  try {
    log('dataset: 1,200 users, groups of 10, 100 and 1,000, a member of 200 groups');
    const users = await makeUsers(client, 1200);
    const sender = users[0]!;
    const others = users.slice(1);
    const groups = new Map<number, number>();
    for (const size of [10, 100, 1000]) groups.set(size, await makeGroup(client, sender, `group of ${size}`, others.slice(0, size - 1)));
    // The member of 200 groups: each with 4 others and 20 messages, the
    // newest 10 unread for them; and 20 direct partners.
    const busy = users[1100]!;
    const crowd = users.slice(1101, 1200);
    for (let g = 0; g < 200; g++) {
      const mates = [0, 1, 2, 3].map((k) => crowd[(g * 4 + k) % crowd.length]!);
      const id = await makeGroup(client, busy, `circle ${g}`, mates);
      await client.query(
        `insert into app_public.messages (sender_id, group_id, content)
         select (array[$2, $3]::bigint[])[1 + i % 2], $1, 'circle talk ' || i from generate_series(1, 10) i`,
        [id, busy.id, mates[0]!.id],
      );
      await client.query(`update app_public.conversation_members set read_seq = 10 where conversation_id = $1 and user_id = $2`, [id, busy.id]);
      await client.query(
        `insert into app_public.messages (sender_id, group_id, content) select $2, $1, 'unread ' || i from generate_series(1, 10) i`,
        [id, mates[1]!.id],
      );
    }
    await client.query(
      `insert into app_public.messages (sender_id, receiver_id, content)
       select u, $1, 'direct ' || u from unnest($2::bigint[]) u`,
      [busy.id, crowd.slice(0, 20).map((u) => u.id)],
    );
    await client.query('vacuum analyze');

    const send = (key: string, label: string, members: number, body: object): Path =>
      ({ key, label, members, method: 'POST', path: '/messages', body: JSON.stringify(body), token: sender.token, env: {}, warm: 1 });
    const paths: Path[] = [
      send('direct', 'send to one user (baseline)', 2, { receiverId: users[1]!.id, content: 'bench direct' }),
      send('group10', 'send to a group of 10', 10, { groupId: groups.get(10), content: 'bench group 10' }),
      send('group100', 'send to a group of 100', 100, { groupId: groups.get(100), content: 'bench group 100' }),
      send('group1000', 'send to a group of 1,000', 1000, { groupId: groups.get(1000), content: 'bench group 1000' }),
      {
        key: 'list200', label: 'conversation list, member of 200 groups (uncached)', members: 0, method: 'GET',
        path: '/conversations?limit=100', token: busy.token, env: { CACHE_TTL_SECONDS: '0' }, warm: 1,
      },
    ];
    if (ONLY) paths.splice(0, paths.length, ...paths.filter((p) => ONLY.includes(p.key)));
    const scripts = new Map<string, { script: string; count: number }>();
    for (const p of paths) {
      const statements = await recordStatements(url, PORT, p, projectRoot);
      scripts.set(p.key, { script: pgbenchScript(statements), count: statements.length });
      log(`${p.key}: ${statements.length} statements recorded`);
    }
    const samples = new Map<string, { api: Sample; ceiling: { tps: number; p50: number } }[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const p of paths) {
        const server = await startServer(url, PORT, p.env);
        try {
          await autocannonLoad({ port: PORT, path: p.path, method: p.method, body: p.body, token: p.token, connections: 4, seconds: 1 });
          for (const connections of CONNECTIONS) {
            const api = await autocannonLoad({ port: PORT, path: p.path, method: p.method, body: p.body, token: p.token, connections, seconds: DURATION });
            const ceiling = pgbench(url, scripts.get(p.key)!.script, connections, DURATION);
            const key = `${p.key}/${connections}`;
            samples.set(key, [...(samples.get(key) ?? []), { api: { rps: api.rps, p50: api.p50, p99: api.p99 }, ceiling }]);
            log(`round ${round} ${p.key} ${connections} conn: API ${api.rps.toFixed(0)} req/s p50 ${api.p50} ms p99 ${api.p99} ms; ceiling ${ceiling.tps.toFixed(0)} tps p50 ${ceiling.p50.toFixed(2)} ms`);
          }
        } finally {
          await stopServer(server);
        }
      }
    }
    for (const p of paths) {
      results.paths.push({
        key: p.key,
        label: p.label,
        members: p.members,
        statements: scripts.get(p.key)!.count,
        runs: CONNECTIONS.map((connections) => {
          const runs = samples.get(`${p.key}/${connections}`)!;
          return {
            connections,
            api: { rps: median(runs.map((r) => r.api.rps)), p50: median(runs.map((r) => r.api.p50)), p99: median(runs.map((r) => r.api.p99)) },
            ceiling: { tps: median(runs.map((r) => r.ceiling.tps)), p50: median(runs.map((r) => r.ceiling.p50)) },
          };
        }),
      });
    }
    fs.writeFileSync(OUT, `${JSON.stringify(ONLY ? keepOtherRows(OUT, results) : results, null, 2)}\n`);
    log(`wrote ${path.relative(projectRoot, OUT)}`);
  } finally {
    await client.end();
    await drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
