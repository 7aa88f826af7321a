/**
 * `npm run bench:ceiling [-- --app DIR] [--out FILE] [--duration S]
 * [--rounds N] [--stats stale|fresh] [--profile]`: each API path beside
 * its ceiling — PostgreSQL serving the same statements with no HTTP and no
 * Node (issue 12).
 *
 * 1. A scratch database: 1,000 users with sessions, a conversation of
 *    2,000 messages, a thread of 200 flat replies, a 200-deep reply chain,
 *    and 120,000 other messages. With `--stats stale` (the default) the
 *    planner's statistics are taken when the table held 2,000 messages and
 *    autovacuum is off for it, so every plan is made with statistics that
 *    lag the table 60-fold; `--stats fresh` analyses before measuring.
 * 2. The ceiling's script is recorded, not written by hand: the server
 *    connects through a recording proxy (bench/wire.ts) for one request per
 *    path, and the statements it sent — session lookup, BEGIN, settings,
 *    the query, COMMIT — become a pgbench script with the parameters as
 *    literals (`-M extended`: parse, bind, execute per statement, as
 *    node-postgres does).
 * 3. Interleaved rounds: autocannon against the API, then pgbench with
 *    the path's script, at 1 and 4 connections; the median of the rounds.
 *    The p50 of pgbench comes from its per-transaction log.
 * 4. `--profile`: one more server per path under `--cpu-prof`, 4
 *    connections; the CPU share per package and the top functions
 *    (`--keep-profiles DIR` keeps the .cpuprofile files).
 *
 * Results go to bench/ceiling.json (or --out); REPORT.md quotes them.
 * `--app DIR` measures another checkout (its server and migrations), for a
 * before/after on the same machine. Only 127.0.0.1 is targeted.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../src/paths';
import {
  argValue,
  autocannonLoad,
  cpuNow,
  keepOtherRows,
  log,
  makeUsers,
  median,
  pgbench,
  recordStatements,
  requestLoad,
  scratchDatabase,
  startServer,
  stopServer,
  type BenchRequest,
  type BenchUser,
} from './lib';
import { summariseProfile, type ProfileSummary } from './profile';
import { pgbenchScript } from './wire';

const args = process.argv.slice(2);
const APP = path.resolve(argValue('--app') ?? projectRoot);
const OUT = path.resolve(argValue('--out') ?? path.join(projectRoot, 'bench', 'ceiling.json'));
const DURATION = Number(argValue('--duration') ?? 5);
const ROUNDS = Number(argValue('--rounds') ?? 3);
const STATS = argValue('--stats') === 'fresh' ? 'fresh' : 'stale';
const PROFILE = args.includes('--profile');
/** `--keep-profiles DIR`: the .cpuprofile files too (open them in Chrome DevTools). */
const KEEP_PROFILES = argValue('--keep-profiles');
/**
 * `--socket DIR`: the API and pgbench both reach PostgreSQL through its Unix
 * socket in DIR (e.g. /var/run/postgresql) instead of TCP on 127.0.0.1.
 */
const SOCKET = argValue('--socket');
/** `--only send,threadFlat`: just those paths (the other rows of --out are kept). */
const ONLY = argValue('--only')?.split(',');
const CONNECTIONS = [1, 4];
const PORT = 3996;
const DB = 'signalbox_bench_ceiling';

/** A path: its request (lib.ts: the server's environment, warm-up requests, a stream's catch-up) and its names. */
type Path = BenchRequest & { key: string; label: string };

type Run = {
  connections: number;
  /** cpuMs: CPU per request, ms: the whole machine's and the server process's share of it. */
  api: { rps: number; p50: number; p99: number; cpuMs: { machine: number; server: number } };
  ceiling: { tps: number; p50: number; cpuMs: number } | null;
};

export type CeilingResult = {
  date: string;
  command: string;
  app: string;
  stats: 'stale' | 'fresh';
  transport: string;
  durationSeconds: number;
  rounds: number;
  machine: { cpus: string; node: string; postgres: string };
  paths: { key: string; label: string; statements: string[]; runs: Run[]; profile?: ProfileSummary }[];
};

/** The dataset; returns the users and the messages the paths use. */
async function build(client: pg.Client) {
  const users = await makeUsers(client, 1000);
  const [alice, bob] = users as [BenchUser, BenchUser];
  const ids = users.map((u) => u.id);
  const first = ids[0]!;
  await client.query(`alter table app_public.messages set (autovacuum_enabled = false)`);
  await client.query(`alter table app_public.notifications set (autovacuum_enabled = false)`);
  await client.query(
    `insert into app_public.messages (sender_id, receiver_id, content)
     select case when g % 2 = 0 then $1::bigint else $2::bigint end,
            case when g % 2 = 0 then $2::bigint else $1::bigint end,
            'conversation message ' || g
       from generate_series(1, 2000) g`,
    [alice.id, bob.id],
  );
  if (STATS === 'stale') await client.query('analyze');
  const root = await client.query<{ id: string }>(
    `insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, 'flat thread root') returning id`,
    [alice.id, bob.id],
  );
  const flatRoot = Number(root.rows[0]!.id);
  await client.query(
    `insert into app_public.messages (sender_id, parent_message_id, content)
     select case when g % 2 = 0 then $2::bigint else $3::bigint end, $1::bigint, 'flat reply ' || g
       from generate_series(1, 200) g`,
    [flatRoot, alice.id, bob.id],
  );
  const chain = await client.query<{ id: string }>(
    `insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, 'chain root') returning id`,
    [alice.id, bob.id],
  );
  const chainRoot = Number(chain.rows[0]!.id);
  await client.query(
    `do $$
     declare parent bigint := ${chainRoot}; i int;
     begin
       for i in 1..200 loop
         insert into app_public.messages (sender_id, parent_message_id, content)
         values (case when i % 2 = 0 then ${alice.id} else ${bob.id} end, parent, 'chain link ' || i)
         returning id into parent;
       end loop;
     end $$`,
  );
  // The other users' traffic: 120,000 messages over 1,000 users.
  await client.query(
    `insert into app_public.messages (sender_id, receiver_id, content)
     select $1::bigint + (g * 7919::bigint) % 1000, $1::bigint + (g * 104729::bigint + 1) % 1000, 'background ' || g
       from generate_series(1, 120000) g
      where (g * 7919::bigint) % 1000 <> (g * 104729::bigint + 1) % 1000`,
    [first],
  );
  // A message alice edits (ten versions), one bob reads, and carol's 100
  // unread messages (50 on the inbox's first page) with their notifications.
  const carol = users[2]!;
  const editable = Number((await client.query<{ id: string }>(
    `insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, 'to be edited') returning id`, [alice.id, bob.id])).rows[0]!.id);
  for (let v = 1; v <= 10; v++) await client.query(`update app_public.messages set content = $2 where id = $1`, [editable, `version ${v}`]);
  const readable = Number((await client.query<{ id: string }>(
    `insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, 'to be read') returning id`, [alice.id, bob.id])).rows[0]!.id);
  await client.query(
    `insert into app_public.messages (sender_id, receiver_id, content) select $1::bigint + g % 50, $2, 'for carol ' || g from generate_series(1, 100) g`,
    [first + 3, carol.id]);
  if (STATS === 'fresh') await client.query('vacuum analyze');
  // The stream's catch-up: carol resumes 50 events before her newest.
  const latest = await client.query<{ seq: string }>(
    `select greatest((select max(seq) from app_public.notifications where user_id = $1),
                     (select max(seq) from app_public.live_events where user_id = $1)) as seq`, [carol.id]);
  const catchUpFrom = Number(latest.rows[0]!.seq) - 50;
  return { alice, bob, carol, flatRoot, chainRoot, editable, readable, catchUpFrom };
}

/** A path's load: autocannon, or for a live stream (which never ends by itself) requestLoad. */
function load(p: Path, connections: number, seconds: number) {
  return p.stream
    ? requestLoad({ port: PORT, request: p, connections, seconds })
    : autocannonLoad({ port: PORT, path: p.path, method: p.method, body: p.body, token: p.token, connections, seconds });
}

async function main(): Promise<void> {
  const { url, drop } = await scratchDatabase(DB, path.join(APP, 'migrations'));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const results: CeilingResult = {
    date: new Date().toISOString(),
    command: `npm run bench:ceiling -- ${args.join(' ')}`.trim(),
    app: APP,
    stats: STATS,
    transport: SOCKET ? `unix socket ${SOCKET}` : 'tcp 127.0.0.1',
    durationSeconds: DURATION,
    rounds: ROUNDS,
    machine: {
      cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
      node: process.version,
      postgres: (await client.query(`select current_setting('server_version') as v`)).rows[0].v,
    },
    paths: [],
  };
  try {
    log(`dataset (${STATS} statistics)`);
    const { alice, bob, carol, flatRoot, chainRoot, editable, readable, catchUpFrom } = await build(client);
    const noCache = { CACHE_TTL_SECONDS: '0' };
    const paths: Path[] = [
      { key: 'send', label: 'send (POST /messages)', method: 'POST', path: '/messages', body: JSON.stringify({ receiverId: bob.id, content: 'bench send' }), token: alice.token, env: {}, warm: 1 },
      { key: 'threadFlat', label: 'thread, 200 flat replies', method: 'GET', path: `/messages/${flatRoot}/thread`, token: alice.token, env: {}, warm: 1 },
      { key: 'threadChain', label: 'thread, 200-deep chain', method: 'GET', path: `/messages/${chainRoot}/thread`, token: alice.token, env: {}, warm: 1 },
      { key: 'conversation', label: 'conversation page, uncached', method: 'GET', path: `/conversations/${bob.id}/messages`, token: alice.token, env: noCache, warm: 1 },
      { key: 'cachedView', label: 'conversation page, cached (HIT)', method: 'GET', path: `/conversations/${alice.id}/messages`, token: bob.token, env: {}, warm: 2 },
      // Every other endpoint a client calls in normal use (issue 24).
      { key: 'reply', label: 'reply (POST /messages, parentMessageId)', method: 'POST', path: '/messages', body: JSON.stringify({ parentMessageId: flatRoot, content: 'bench reply' }), token: bob.token, env: {}, warm: 1 },
      { key: 'edit', label: 'edit (PATCH /messages/:id)', method: 'PATCH', path: `/messages/${editable}`, body: JSON.stringify({ content: 'bench edit' }), token: alice.token, env: {}, warm: 1 },
      { key: 'markRead', label: 'mark read (POST /messages/:id/read)', method: 'POST', path: `/messages/${readable}/read`, token: bob.token, env: {}, warm: 1 },
      { key: 'conversationRead', label: 'conversation read (POST /conversations/:id/read)', method: 'POST', path: `/conversations/${alice.id}/read`, token: bob.token, env: {}, warm: 1 },
      { key: 'inbox', label: 'unread inbox (GET /inbox/unread)', method: 'GET', path: '/inbox/unread', token: carol.token, env: {}, warm: 1 },
      { key: 'conversationList', label: 'conversation list, uncached', method: 'GET', path: '/conversations', token: alice.token, env: noCache, warm: 1 },
      { key: 'message', label: 'one message (GET /messages/:id)', method: 'GET', path: `/messages/${editable}`, token: bob.token, env: {}, warm: 1 },
      { key: 'history', label: 'history (GET /messages/:id/history)', method: 'GET', path: `/messages/${editable}/history`, token: bob.token, env: {}, warm: 1 },
      { key: 'notifications', label: 'notifications (GET /notifications)', method: 'GET', path: '/notifications', token: carol.token, env: {}, warm: 1 },
      { key: 'search', label: 'search (GET /search)', method: 'GET', path: '/search?q=background', token: alice.token, env: {}, warm: 1 },
      { key: 'me', label: 'GET /me', method: 'GET', path: '/me', token: alice.token, env: {}, warm: 1 },
      {
        key: 'catchUp', label: 'stream catch-up (Last-Event-ID, 50 events)', method: 'GET', path: '/notifications/stream', token: carol.token,
        env: { SSE_MAX_STREAMS_PER_USER: '1000' }, warm: 1, stream: { lastEventId: `s${catchUpFrom}`, events: 50 },
      },
    ];
    if (ONLY) paths.splice(0, paths.length, ...paths.filter((p) => ONLY.includes(p.key)));
    const scripts = new Map<string, string>();
    for (const p of paths) {
      const statements = await recordStatements(url, PORT, p, APP);
      scripts.set(p.key, pgbenchScript(statements));
      results.paths.push({ key: p.key, label: p.label, statements: statements.map((s) => s.text.replace(/\s+/g, ' ').trim()), runs: [] });
      log(`${p.key}: ${statements.length} statements recorded`);
    }

    // The load runs' transport (the recording above went through TCP: the statements are the same).
    const loadUrl = SOCKET ? (() => {
      const u = new URL(url);
      return `postgres://${u.username || 'postgres'}@${encodeURIComponent(SOCKET)}${u.pathname}`;
    })() : url;
    const samples = new Map<string, Run[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const p of paths) {
        const server = await startServer(loadUrl, PORT, p.env, APP);
        try {
          await load(p, 4, 1); // warm-up
          for (const connections of CONNECTIONS) {
            const cpu0 = cpuNow(server.pid);
            const api = await load(p, connections, DURATION);
            const cpu1 = cpuNow(server.pid);
            const requests = api.rps * DURATION;
            const apiCpu = { machine: (cpu1.machine - cpu0.machine) / requests, server: (cpu1.process - cpu0.process) / requests };
            // A path that sends no statement (a cache hit) has no database ceiling.
            const script = scripts.get(p.key)!;
            const cpu2 = cpuNow();
            const bench = script ? pgbench(loadUrl, script, connections, DURATION) : null;
            const cpu3 = cpuNow();
            const ceiling = bench && { ...bench, cpuMs: (cpu3.machine - cpu2.machine) / (bench.tps * DURATION) };
            const key = `${p.key}/${connections}`;
            samples.set(key, [...(samples.get(key) ?? []), { connections, api: { rps: api.rps, p50: api.p50, p99: api.p99, cpuMs: apiCpu }, ceiling }]);
            log(`round ${round} ${p.key} ${connections} conn: API ${api.rps.toFixed(0)} req/s p50 ${api.p50} ms, CPU/req ${apiCpu.machine.toFixed(2)} ms (server ${apiCpu.server.toFixed(2)}); ceiling ${ceiling ? `CPU/tx ${ceiling.cpuMs.toFixed(2)} ms ` : ''} ${ceiling ? `${ceiling.tps.toFixed(0)} tps p50 ${ceiling.p50.toFixed(2)} ms` : 'none (no statement)'}`);
          }
        } finally {
          await stopServer(server);
        }
      }
    }
    for (const entry of ROUNDS > 0 ? results.paths : []) {
      entry.runs = CONNECTIONS.map((connections) => {
        const runs = samples.get(`${entry.key}/${connections}`)!;
        return {
          connections,
          api: {
            rps: median(runs.map((r) => r.api.rps)),
            p50: median(runs.map((r) => r.api.p50)),
            p99: median(runs.map((r) => r.api.p99)),
            cpuMs: { machine: median(runs.map((r) => r.api.cpuMs.machine)), server: median(runs.map((r) => r.api.cpuMs.server)) },
          },
          ceiling: runs[0]!.ceiling && {
            tps: median(runs.map((r) => r.ceiling!.tps)),
            p50: median(runs.map((r) => r.ceiling!.p50)),
            cpuMs: median(runs.map((r) => r.ceiling!.cpuMs)),
          },
        };
      });
    }

    if (PROFILE) {
      for (const p of paths) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceiling-prof-'));
        const server = await startServer(loadUrl, PORT, p.env, APP, ['--cpu-prof', '--cpu-prof-dir', dir]);
        try {
          await load(p, 4, DURATION);
        } finally {
          await stopServer(server);
        }
        const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
        if (file) results.paths.find((e) => e.key === p.key)!.profile = summariseProfile(path.join(dir, file));
        if (file && KEEP_PROFILES) fs.copyFileSync(path.join(dir, file), path.join(KEEP_PROFILES, `${p.key}.cpuprofile`));
        fs.rmSync(dir, { recursive: true, force: true });
        log(`${p.key}: profiled`);
      }
    }
  } finally {
    await client.end();
    if (!args.includes('--keep-db')) await drop();
  }
  fs.writeFileSync(OUT, `${JSON.stringify(ONLY ? keepOtherRows(OUT, results) : results, null, 2)}\n`);
  log(`written ${path.relative(process.cwd(), OUT)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
