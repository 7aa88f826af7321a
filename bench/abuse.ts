/**
 * `npm run bench:abuse`: issue 11's measurements, each beside its baseline
 * in the same run, against a server child on 127.0.0.1.
 *
 * 1. RSS over time while one user requests 1,500 distinct large
 *    conversation pages (~600 KB each: 10 messages of 10,000 \u0001, six
 *    bytes each in JSON), with a 32 MiB cache budget, against the same run
 *    with the cache off (CACHE_TTL_SECONDS=0: the heap without any entries).
 * 2. Login latency of other users (another address) while one address
 *    floods DELETE /me with wrong passwords, against no flood. Addresses
 *    come from X-Forwarded-For (TRUST_PROXY=true for this server only).
 * 3. The send path with an Idempotency-Key against without, interleaved.
 *
 * Writes bench/abuse.json; REPORT.md quotes it. Every loop is bounded.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { argon2Hash } from '../src/auth/tokens';
import { projectRoot } from '../src/paths';
import { argValue, log, makeUsers, median, percentile, rssMiB, scratchDatabase, sleep, startServer, stopServer, type BenchUser } from './lib';

/** `--app DIR`: another checkout's server (its dist/), for a before/after; `--only idempotency`. */
const APP = argValue('--app');
const ONLY = argValue('--only');
const DB = 'signalbox_bench_abuse';
const PORT = 3996;
const base = `http://127.0.0.1:${PORT}`;

async function cacheBomb(url: string, client: pg.Client, ttlSeconds: number) {
  const [alice, bob] = await makeUsers(client, 2);
  await client.query(
    `insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, repeat(chr(1), 10000) from generate_series(1, 1600)`,
    [alice!.id, bob!.id],
  );
  const { rows } = await client.query<{ id: string }>('select id from app_public.messages where sender_id = $1 order by id', [alice!.id]);
  const server = await startServer(url, PORT, { CACHE_MAX_BYTES: String(32 * 1024 * 1024), CACHE_TTL_SECONDS: String(ttlSeconds) });
  const samples: { seconds: number; rssMiB: number }[] = [];
  const t0 = Date.now();
  let cachedBytes = 0;
  try {
    const ids = rows.map((r) => Number(r.id)).slice(10, 1510);
    for (const [i, before] of ids.entries()) {
      const res = await fetch(`${base}/conversations/${alice!.id}/messages?limit=10&before=${before}`, {
        headers: { authorization: `Bearer ${bob!.token}` },
      });
      cachedBytes += (await res.text()).length * 2;
      if (i % 50 === 0) samples.push({ seconds: (Date.now() - t0) / 1000, rssMiB: rssMiB(server.pid!).now });
    }
    await sleep(500);
    samples.push({ seconds: (Date.now() - t0) / 1000, rssMiB: rssMiB(server.pid!).now });
    return { ttlSeconds, pages: ids.length, offeredMiB: cachedBytes / 2 ** 20, peakRssMiB: rssMiB(server.pid!).peak, samples };
  } finally {
    await stopServer(server);
  }
}

async function loginUnderFlood(url: string, client: pg.Client) {
  const [victim, flooder] = await makeUsers(client, 2);
  const passwordHash = await argon2Hash('correct horse battery');
  await client.query(
    `insert into app_private.user_secrets (user_id, password_hash) values ($1, $3), ($2, $3)`,
    [victim!.id, flooder!.id, passwordHash],
  );
  const { rows } = await client.query<{ username: string }>('select username from app_public.users where id = $1', [victim!.id]);
  const username = rows[0]!.username;
  const server = await startServer(url, PORT, { TRUST_PROXY: 'true' });
  let logins = 0;
  const login = async () => {
    const t0 = performance.now();
    // Other users: each login from its own address (one address may make
    // 60 password checks a minute).
    const res = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.1.${++logins % 250}.${Math.floor(logins / 250) + 1}` },
      body: JSON.stringify({ username, password: 'correct horse battery' }),
    });
    if (res.status !== 200) throw new Error(`login: ${res.status}`);
    await res.arrayBuffer();
    return performance.now() - t0;
  };
  const measure = async (n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push(await login());
    return { p50: percentile(times, 50), p99: percentile(times, 99), n };
  };
  try {
    const quiet = await measure(60);
    let flooding = true;
    const statuses: Record<number, number> = {};
    const flood = Promise.all(
      Array.from({ length: 16 }, async () => {
        while (flooding) {
          const status = await fetch(`${base}/me`, {
            method: 'DELETE',
            headers: { authorization: `Bearer ${flooder!.token}`, 'content-type': 'application/json', 'x-forwarded-for': '10.6.6.6' },
            body: JSON.stringify({ password: 'wrong guess' }),
          }).then(
            async (res) => {
              await res.arrayBuffer();
              return res.status;
            },
            () => 0, // connection reset: counted, and the flood goes on
          );
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      }),
    );
    await sleep(500);
    const flooded = await measure(60);
    flooding = false;
    await flood;
    return { quiet, underFlood: flooded, floodAnswers: statuses };
  } finally {
    await stopServer(server);
  }
}

async function idempotencyCost(url: string, client: pg.Client) {
  const [alice, bob] = await makeUsers(client, 2);
  const server = await startServer(url, PORT, {}, APP);
  const sendLoop = async (from: BenchUser, to: BenchUser, withKey: boolean, n: number, tag: string) => {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async (_, lane) => {
        for (let i = lane; i < n; i += 4) {
          const res = await fetch(`${base}/messages`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${from.token}`,
              'content-type': 'application/json',
              ...(withKey ? { 'idempotency-key': `${tag}-${i}` } : {}),
            },
            body: JSON.stringify({ receiverId: to.id, content: `m ${i}` }),
          });
          if (res.status !== 201 && res.status !== 200) throw new Error(`send: ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  };
  try {
    const withKey: number[] = [];
    const without: number[] = [];
    await sendLoop(alice!, bob!, false, 300, 'warm');
    for (let round = 0; round < 3; round++) {
      without.push(await sendLoop(alice!, bob!, false, 1000, `r${round}`));
      withKey.push(await sendLoop(alice!, bob!, true, 1000, `r${round}`));
    }
    // Retries: the same key and request again (answered from the key).
    const replays: number[] = [];
    for (let round = 0; round < 3; round++) replays.push(await sendLoop(alice!, bob!, true, 1000, 'r0'));
    return {
      sendsPerSecondWithout: median(without), sendsPerSecondWithKey: median(withKey), replaysPerSecond: median(replays),
      rounds: 3, sendsPerRound: 1000, connections: 4,
    };
  } finally {
    await stopServer(server);
  }
}

async function main(): Promise<void> {
  const { url, drop } = await scratchDatabase(DB);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const results: Record<string, unknown> = { date: new Date().toISOString() };
  try {
    if (ONLY === 'idempotency') {
      results.idempotency = await idempotencyCost(url, client);
      log(JSON.stringify(results.idempotency));
      return;
    }
    log('cache bomb, cache off (baseline)');
    const off = await cacheBomb(url, client, 0);
    log(`peak RSS ${off.peakRssMiB.toFixed(0)} MiB`);
    log('cache bomb, 32 MiB budget');
    const on = await cacheBomb(url, client, 60);
    log(`peak RSS ${on.peakRssMiB.toFixed(0)} MiB for ${on.offeredMiB.toFixed(0)} MiB of pages`);
    results.cacheBomb = { budgetMiB: 32, cacheOff: off, cacheOn: on };
    log('login latency under a DELETE /me flood');
    results.loginUnderFlood = await loginUnderFlood(url, client);
    log(JSON.stringify(results.loginUnderFlood));
    log('send with and without Idempotency-Key');
    results.idempotency = await idempotencyCost(url, client);
    log(JSON.stringify(results.idempotency));
  } finally {
    await client.end();
    await drop();
  }
  if (!ONLY) fs.writeFileSync(path.join(projectRoot, 'bench', 'abuse.json'), `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
