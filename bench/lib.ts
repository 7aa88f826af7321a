/**
 * What the benchmark scripts share: the server child process, a clock-
 * stamped log, statistics, and users with sessions made in SQL (no argon2,
 * no HTTP). Every server listens on 127.0.0.1 only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import type pg from 'pg';
import { hashToken, newToken } from '../src/auth/tokens';
import { loadConfig } from '../src/config';
import { adminQuery, resolveServer, withDatabase } from '../src/db/admin';
import { ensureRoles, migrateDatabase } from '../src/db/setup';
import { projectRoot } from '../src/paths';
import { startRecorder, type WireStatement } from './wire';

/** The value after `--name` on the command line, if given. */
export const argValue = (name: string): string | undefined => {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const started = Date.now();
export const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

/** The benchmark server (bench/server.ts: the real app, plus baseline routes) of a checkout. */
export async function startServer(
  databaseUrl: string,
  port: number,
  env: Record<string, string> = {},
  appDir: string = projectRoot,
  nodeArgs: string[] = [],
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, path.join(appDir, 'dist', 'bench', 'server.js')], {
    // Every load comes from 127.0.0.1, mostly as one user: no per-address
    // connection cap, no per-user request or send budget (what is measured is the path).
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), LOG_LEVEL: 'silent', MAX_CONNECTIONS_PER_ADDRESS: '0', USER_RATE_LIMIT: '1000000', SEND_RATE_LIMIT: '1000000', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return child;
}

export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

export type Load = { connections: number; rps: number; p50: number; p99: number; errors: number; non2xx: number; requests?: number };

export type LoadOptions = {
  port: number;
  path: string;
  method?: 'GET' | 'POST' | 'PATCH';
  body?: string;
  token: string;
  connections: number;
  seconds: number;
};

/** An autocannon run against 127.0.0.1; any error or non-2xx answer fails the benchmark. */
export async function autocannonLoad(opts: LoadOptions): Promise<Load> {
  const result = await autocannon({
    url: `http://127.0.0.1:${opts.port}${opts.path}`,
    method: opts.method ?? 'GET',
    connections: opts.connections,
    duration: opts.seconds,
    // A JSON content type only with a body: an empty one is a 400.
    headers: { authorization: `Bearer ${opts.token}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body ? { body: opts.body } : {}),
  });
  if (result.errors + result.timeouts + result.non2xx > 0) {
    throw new Error(`${opts.method ?? 'GET'} ${opts.path}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return {
    connections: opts.connections,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    requests: result.requests.total,
  };
}

/** Resident set size of a process now (VmRSS) and at its peak (VmHWM), in MiB. */
export function rssMiB(pid: number): { now: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

export type BenchUser = { id: number; token: string };

let made = 0;
/** `count` users, each with a live session, straight in SQL. */
export async function makeUsers(client: pg.Client, count: number): Promise<BenchUser[]> {
  const { rows } = await client.query<{ id: string }>(
    `insert into app_public.users (username) select 'bench_' || ($2::int + g) || '_' || $3::int from generate_series(1, $1::int) g returning id`,
    [count, made, process.pid % 100000],
  );
  made += count;
  const users = rows.map((r) => ({ id: Number(r.id), token: newToken() }));
  await client.query(
    `insert into app_private.sessions (token_hash, user_id, expires_at)
     select h, u, now() + interval '1 day' from unnest($1::bytea[], $2::bigint[]) as x(h, u)`,
    [users.map((u) => hashToken(u.token)), users.map((u) => u.id)],
  );
  return users;
}

/**
 * A fresh, migrated database `name` on the benchmark's server (DATABASE_URL,
 * else 127.0.0.1:5432, else an embedded one), and a drop() for the end.
 * `migrationsFolder` lets a script build another checkout's schema.
 */
export async function scratchDatabase(
  name: string,
  migrationsFolder?: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
  const { serverUrl, stop } = await resolveServer({
    embeddedDataDir: path.join(projectRoot, '.data', 'bench'),
    embeddedPort: config.EMBEDDED_PG_PORT + 2,
  });
  const url = withDatabase(serverUrl, name);
  await adminQuery(serverUrl, `drop database if exists ${name} with (force)`, `create database ${name}`);
  await ensureRoles(serverUrl, config.DATABASE_VISITOR);
  await migrateDatabase(url, config.DATABASE_VISITOR, { quiet: true, ...(migrationsFolder ? { migrationsFolder } : {}) });
  return {
    url,
    drop: async () => {
      await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
      await stop();
    },
  };
}

/** CPU time used so far, in ms: the whole machine (all cores, busy only) and, given a pid, that process. */
export function cpuNow(pid?: number): { machine: number; process: number } {
  const ticks = 100; // USER_HZ on Linux
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
  const busy = fields.slice(0, 8).reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!;
  let own = 0;
  if (pid) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    own = Number(after[11]) + Number(after[12]); // utime, stime
  }
  return { machine: (busy * 1000) / ticks, process: (own * 1000) / ticks };
}

/** pgbench running `script` (-M extended, as node-postgres sends): tps and the p50 from its per-transaction log. */
export function pgbench(url: string, script: string, connections: number, seconds: number): { tps: number; p50: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceiling-'));
  try {
    const file = path.join(dir, 'script.sql');
    fs.writeFileSync(file, script);
    const out = spawnSync(
      'pgbench',
      ['-n', '-M', 'extended', '-f', file, '-c', String(connections), '-j', String(Math.min(connections, 2)), '-T', String(seconds), '-l', '--log-prefix', path.join(dir, 'log'), url],
      { encoding: 'utf8' },
    );
    if (out.status !== 0) throw new Error(`pgbench failed: ${out.stderr}`);
    const tps = Number(/tps = ([\d.]+)/.exec(out.stdout)?.[1]);
    const latencies: number[] = [];
    for (const name of fs.readdirSync(dir).filter((f) => f.startsWith('log'))) {
      for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
        const us = Number(line.split(' ')[2]);
        if (line && Number.isFinite(us)) latencies.push(us / 1000);
      }
    }
    return { tps, p50: percentile(latencies, 50) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One API request as a bench path describes it; a non-2xx answer throws. */
export type BenchRequest = {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  body?: string;
  token: string;
  /** The server's environment: the uncached view runs with the cache off. */
  env: Record<string, string>;
  /** Requests made before the recorded one: the steady state (session known; the cached view: its entry stored). */
  warm: number;
  /** A live stream's catch-up: resume after `lastEventId`, read `events` events, hang up. */
  stream?: { lastEventId: string; events: number };
};

/** One request of `p`, its answer read whole (a stream's: until its events came). */
export async function benchRequest(port: number, p: BenchRequest): Promise<void> {
  const hangUp = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}${p.path}`, {
    method: p.method,
    headers: {
      authorization: `Bearer ${p.token}`,
      ...(p.body ? { 'content-type': 'application/json' } : {}),
      ...(p.stream ? { 'last-event-id': p.stream.lastEventId } : {}),
    },
    ...(p.body ? { body: p.body } : {}),
    signal: hangUp.signal,
  });
  if (res.status >= 300) throw new Error(`${p.method} ${p.path}: ${res.status}`);
  if (!p.stream) {
    await res.arrayBuffer();
    return;
  }
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (let seen = 0; seen < p.stream.events; seen = (text.match(/^id: /gm) ?? []).length) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${p.path}: the stream ended after ${seen} of ${p.stream.events} events`);
    text += decoder.decode(value, { stream: true });
  }
  hangUp.abort();
}

/**
 * Load for requests autocannon cannot make (a live stream that never ends
 * by itself): `connections` loops of benchRequest for `seconds`, each
 * request timed from its start to its last byte needed.
 */
export async function requestLoad(opts: { port: number; request: BenchRequest; connections: number; seconds: number }): Promise<Load> {
  const latencies: number[] = [];
  const end = performance.now() + opts.seconds * 1000;
  await Promise.all(Array.from({ length: opts.connections }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await benchRequest(opts.port, opts.request);
      latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { connections: opts.connections, rps: latencies.length / opts.seconds, p50: at(0.5), p99: at(0.99), errors: 0, non2xx: 0, requests: latencies.length };
}

/** The statements one request of `p` sends, read off the wire (the LISTEN connection's left out). */
export async function recordStatements(url: string, port: number, p: BenchRequest, appDir: string): Promise<WireStatement[]> {
  const target = new URL(url);
  const recorder = await startRecorder({ host: target.hostname, port: Number(target.port || 5432) });
  const proxied = new URL(url);
  proxied.host = `127.0.0.1:${recorder.port}`;
  const server = await startServer(proxied.toString(), port, p.env, appDir);
  try {
    for (let i = 0; i < p.warm; i++) await benchRequest(port, p);
    await new Promise((r) => setTimeout(r, 200));
    recorder.take();
    await benchRequest(port, p);
    await new Promise((r) => setTimeout(r, 200));
    const statements = recorder.take();
    const listening = new Set(statements.filter((s) => /^\s*LISTEN\b/i.test(s.text)).map((s) => s.connection));
    return statements.filter((s) => !listening.has(s.connection));
  } finally {
    await stopServer(server);
    await recorder.close();
  }
}

/**
 * `--only` re-measures some paths: the rows of an earlier run in `out` for
 * the other paths stay, and the command line says which run each came from.
 */
export function keepOtherRows<R extends { command: string; paths: { key: string }[] }>(out: string, results: R): R {
  if (!fs.existsSync(out)) return results;
  const earlier = JSON.parse(fs.readFileSync(out, 'utf8')) as R;
  return {
    ...results,
    // Earlier rows in their order, re-measured ones in their place; new paths after them.
    paths: [
      ...earlier.paths.map((x) => results.paths.find((y) => y.key === x.key) ?? x),
      ...results.paths.filter((y) => !earlier.paths.some((x) => x.key === y.key)),
    ],
    command: `${earlier.command}; then ${results.command}`,
  };
}
