/**
 * `npm run bench:isolation [-- --app DIR] [--only NAME]` (also run by
 * `npm run bench:abuse`): what one user's or one attacker's trouble costs
 * everyone else, each attack with the victim's latency beside it. Four
 * attacks, each against a fresh server on a fresh database:
 *
 * - heldLock: a DBA session holds one user's delivery counter while 15
 *   sends to that user are in flight and keep coming; an unrelated user
 *   reads their inbox and sends, one request at a time, for 8 s.
 * - searchFlood: a user with 200,000 messages runs 40 concurrent searches
 *   for a word every message has, for 10 s; an unrelated user reads their
 *   inbox and sends meanwhile (and alone, for 3 s before: the baseline).
 * - loginFlood: 300 source addresses (127.1.x.y) post wrong logins for
 *   made-up names, one at a time each, for 10 s; the owner of an account,
 *   who signed in once before on this device, signs in every 100 ms from a
 *   fresh address with the device token (a server without device tokens
 *   ignores it): their success rate and latency.
 * - slowloris: 3,000 sockets (127.2.x.y) each send headers with
 *   `Content-Length: 1000` and then one body byte every 2 s for 20 s; the
 *   server's open descriptors each second and /healthz's latency.
 *
 * `--app DIR` runs the bench server of another checkout (the "before").
 * Writes bench/isolation.json (or --out FILE). Local server only; every
 * loop ends by itself.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { argon2Hash } from '../src/auth/tokens';
import { projectRoot } from '../src/paths';
import { argValue, log, makeUsers, median, percentile, scratchDatabase, sleep, startServer, stopServer, type BenchUser } from './lib';

type Probe = { p50: number; p99: number; statuses: Record<string, number>; requests: number };
export type HeldLock = { inbox: Probe; send: Probe; blockedSends: Record<string, number> };
export type SearchFlood = { messages: number; searches: Probe; inbox: Probe; send: Probe; baselineInbox: Probe };
export type LoginFlood = { addresses: number; strangers: Record<string, number>; owner: Probe & { successRate: number } };
export type Slowloris = { sockets: number; opened: number; fds: number[]; peakFds: number; baselineFds: number; healthz: Probe };
export type IsolationBench = {
  date: string;
  app: string;
  heldLock?: HeldLock;
  searchFlood?: SearchFlood;
  loginFlood?: LoginFlood;
  slowloris?: Slowloris;
};

type Sample = { ms: number; status: number };

async function timed(url: string, init: RequestInit = {}): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

/** One POST on its own connection from `localAddress` (any 127.x.y.z on Linux); status 0 when the socket failed. */
function fromAddress(
  port: number,
  localAddress: string,
  urlPath: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Sample & { body: string }> {
  const t0 = performance.now();
  const payload = JSON.stringify(body);
  const failed = () => ({ ms: performance.now() - t0, status: 0, body: '' });
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress,
        path: urlPath,
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', () => resolve(failed()));
      },
    );
    req.on('error', () => resolve(failed()));
    req.end(payload);
  });
}

function countStatuses(statuses: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

function summary(samples: Sample[]): Probe {
  const ms = samples.map((s) => s.ms);
  return { p50: median(ms), p99: percentile(ms, 99), statuses: countStatuses(samples.map((s) => s.status)), requests: samples.length };
}

const describe = (p: Probe) => `p50 ${p.p50.toFixed(1)} ms p99 ${p.p99.toFixed(1)} (${JSON.stringify(p.statuses)})`;
const openFds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

type Api = {
  base: string;
  port: number;
  pid: number;
  admin: pg.Client;
  get: (as: BenchUser, urlPath: string) => Promise<Sample>;
  post: (as: BenchUser, urlPath: string, body: unknown) => Promise<Sample>;
};

/** An unrelated user's inbox reads and sends, one at a time, until `until`. */
async function bystander(api: Api, alice: BenchUser, bob: BenchUser, until: number): Promise<{ inbox: Probe; send: Probe }> {
  const inbox: Sample[] = [];
  const sends: Sample[] = [];
  while (Date.now() < until) {
    inbox.push(await api.get(bob, '/inbox/unread'));
    sends.push(await api.post(alice, '/messages', { receiverId: bob.id, content: 'unrelated' }));
  }
  return { inbox: summary(inbox), send: summary(sends) };
}

async function heldLock(api: Api): Promise<HeldLock> {
  const [victim, attacker, alice, bob] = await makeUsers(api.admin, 4);
  await api.post(attacker!, '/messages', { receiverId: victim!.id, content: 'first' });
  await api.post(alice!, '/messages', { receiverId: bob!.id, content: 'first' });
  await api.admin.query('begin');
  await api.admin.query('select * from app_private.delivery_counters where user_id = $1 for update', [victim!.id]);
  log(`heldLock: holding user ${victim!.id}'s counter; 15 senders to them, one unrelated reader and sender`);
  const until = Date.now() + 8000;
  // The lock goes at the end of the window, whatever the requests do (on
  // a server where they all wait for it, nothing else would end it).
  const released = sleep(8000).then(() => api.admin.query('rollback'));
  const blocked: number[] = [];
  const attackers = Array.from({ length: 15 }, async (_, i) => {
    while (Date.now() < until) blocked.push((await api.post(attacker!, '/messages', { receiverId: victim!.id, content: `stuck ${i}` })).status);
  });
  await sleep(300);
  const seen = await bystander(api, alice!, bob!, until);
  await released;
  await Promise.all(attackers);
  const result = { ...seen, blockedSends: countStatuses(blocked) };
  log(`heldLock: unrelated inbox ${describe(result.inbox)}; send ${describe(result.send)}; blocked sends ${JSON.stringify(result.blockedSends)}`);
  return result;
}

async function searchFlood(api: Api): Promise<SearchFlood> {
  const [heavy, partner, alice, bob] = await makeUsers(api.admin, 4);
  const messages = 200_000;
  const t0 = Date.now();
  for (let done = 0; done < messages; done += 50_000) {
    await api.admin.query(
      `insert into app_public.messages (sender_id, receiver_id, content)
       select $1, $2, 'common words about lunch number ' || g from generate_series(1, 50000) g`,
      [heavy!.id, partner!.id],
    );
  }
  await api.admin.query('vacuum analyze app_public.messages');
  await api.post(alice!, '/messages', { receiverId: bob!.id, content: 'first' });
  log(`searchFlood: ${messages} messages for user ${heavy!.id} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const baseline = await bystander(api, alice!, bob!, Date.now() + 3000);
  const until = Date.now() + 10_000;
  const searches: Sample[] = [];
  const flood = Array.from({ length: 40 }, async () => {
    while (Date.now() < until) searches.push(await api.get(heavy!, '/search?q=lunch'));
  });
  await sleep(300);
  const seen = await bystander(api, alice!, bob!, until);
  await Promise.all(flood);
  const result = { messages, searches: summary(searches), ...seen, baselineInbox: baseline.inbox };
  log(`searchFlood: searches ${describe(result.searches)}; unrelated inbox ${describe(result.inbox)} (alone: ${describe(result.baselineInbox)}); send ${describe(result.send)}`);
  return result;
}

async function loginFlood(api: Api): Promise<LoginFlood> {
  const [owner] = await makeUsers(api.admin, 1);
  await api.admin.query('insert into app_private.user_secrets (user_id, password_hash) values ($1, $2)', [
    owner!.id,
    await argon2Hash('correct horse battery'),
  ]);
  const { rows } = await api.admin.query<{ username: string }>('select username from app_public.users where id = $1', [owner!.id]);
  const login = { username: rows[0]!.username, password: 'correct horse battery' };
  const first = await fromAddress(api.port, '127.3.0.1', '/auth/login', login);
  const deviceToken = (JSON.parse(first.body) as { deviceToken?: string }).deviceToken;
  const headers: Record<string, string> = deviceToken ? { 'x-signalbox-device': deviceToken } : {};
  log(`loginFlood: the owner signed in once (${first.status}, ${deviceToken ? 'a device token' : 'no device token'}); 300 addresses flood for 10 s`);
  const until = Date.now() + 10_000;
  const strangers: number[] = [];
  const flood = Array.from({ length: 300 }, async (_, i) => {
    const address = `127.1.${Math.floor(i / 250)}.${1 + (i % 250)}`;
    for (let n = 0; Date.now() < until; n++) {
      strangers.push((await fromAddress(api.port, address, '/auth/login', { username: `made_up_${i}_${n}`, password: 'guess' })).status);
    }
  });
  await sleep(500);
  const owners: Sample[] = [];
  for (let n = 0; Date.now() < until; n++) {
    owners.push(await fromAddress(api.port, `127.4.${Math.floor(n / 250)}.${1 + (n % 250)}`, '/auth/login', login, headers));
    await sleep(100);
  }
  await Promise.all(flood);
  const probe = summary(owners);
  const result = { addresses: 300, strangers: countStatuses(strangers), owner: { ...probe, successRate: (probe.statuses['200'] ?? 0) / probe.requests } };
  log(`loginFlood: strangers ${JSON.stringify(result.strangers)}; owner ${describe(result.owner)}, success ${(100 * result.owner.successRate).toFixed(1)} %`);
  return result;
}

async function slowloris(api: Api): Promise<Slowloris> {
  const baselineFds = openFds(api.pid);
  const sockets: net.Socket[] = [];
  let opened = 0;
  const count = 3000;
  for (let i = 0; i < count; i++) {
    const socket = net.connect({ host: '127.0.0.1', port: api.port, localAddress: `127.2.${Math.floor(i / 250)}.${1 + (i % 250)}` });
    socket.on('error', () => {});
    socket.on('connect', () => {
      opened++;
      socket.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    });
    sockets.push(socket);
    if (i % 100 === 99) await sleep(50);
  }
  log(`slowloris: ${count} sockets, a byte every 2 s for 20 s`);
  const fds: number[] = [];
  const health: Sample[] = [];
  const until = Date.now() + 20_000;
  for (let tick = 0; Date.now() < until; tick++) {
    const started = Date.now();
    if (tick % 2 === 0) for (const s of sockets) if (!s.destroyed && s.writable) s.write(' ');
    fds.push(openFds(api.pid));
    health.push(await timed(`${api.base}/healthz`, { signal: AbortSignal.timeout(5000) }).catch(() => ({ ms: 5000, status: 0 })));
    await sleep(Math.max(0, 1000 - (Date.now() - started)));
  }
  for (const s of sockets) s.destroy();
  const result = { sockets: count, opened, fds, peakFds: Math.max(...fds), baselineFds, healthz: summary(health) };
  log(`slowloris: ${opened} opened; descriptors ${baselineFds} before, peak ${result.peakFds}, last ${fds.at(-1)}; /healthz ${describe(result.healthz)}`);
  return result;
}

const ATTACKS = { heldLock, searchFlood, loginFlood, slowloris } as const;
type Attack = keyof typeof ATTACKS;

async function main(): Promise<void> {
  const appDir = argValue('--app') ?? projectRoot;
  const only = argValue('--only');
  const result: IsolationBench = { date: new Date().toISOString(), app: appDir === projectRoot ? 'this checkout' : appDir };
  for (const name of Object.keys(ATTACKS) as Attack[]) {
    if (only && only !== name) continue;
    const db = await scratchDatabase('signalbox_bench_isolation', path.join(appDir, 'migrations'));
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const port = 38_000 + Math.floor(Math.random() * 1000);
    // The API's own settings (timeouts, per-user and per-address budgets,
    // the connection cap); only the benchmark servers' per-user request
    // budget stays off, and the slowloris run restores the per-address cap.
    const server = await startServer(db.url, port, name === 'slowloris' ? { MAX_CONNECTIONS_PER_ADDRESS: '1024' } : {}, appDir);
    const base = `http://127.0.0.1:${port}`;
    const api: Api = {
      base,
      port,
      pid: server.pid!,
      admin,
      get: (as, urlPath) => timed(`${base}${urlPath}`, { headers: { authorization: `Bearer ${as.token}` } }),
      post: (as, urlPath, body) =>
        timed(`${base}${urlPath}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${as.token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
    };
    try {
      Object.assign(result, { [name]: await ATTACKS[name](api) });
    } finally {
      await stopServer(server);
      await admin.end();
      await db.drop();
    }
  }
  const out = argValue('--out') ?? path.join(projectRoot, 'bench', 'isolation.json');
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
