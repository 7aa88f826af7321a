/**
 * `npm run bench:isolation [-- --app DIR]`: what one user's trouble costs
 * everyone else. A DBA session holds one user's delivery counter while 15
 * sends to that user are in flight and keep coming; meanwhile an unrelated
 * user reads their inbox and sends, one request at a time, for 8 s: their
 * p50/p99 and statuses, and the blocked sends' statuses. `--app DIR` runs
 * the bench server of another checkout (the "before"). Writes
 * bench/isolation.json (or --out FILE). Local server only.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../src/paths';
import { argValue, log, makeUsers, median, percentile, scratchDatabase, sleep, startServer, stopServer } from './lib';

type Probe = { p50: number; p99: number; statuses: Record<string, number>; requests: number };
export type IsolationBench = { date: string; app: string; inbox: Probe; send: Probe; blockedSends: Record<string, number> };

async function timed(url: string, init: RequestInit): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

function summary(samples: { ms: number; status: number }[]): Probe {
  const ms = samples.map((s) => s.ms);
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  return { p50: median(ms), p99: percentile(ms, 99), statuses, requests: samples.length };
}

async function main(): Promise<void> {
  const appDir = argValue('--app') ?? projectRoot;
  const db = await scratchDatabase('signalbox_bench_isolation', path.join(appDir, 'migrations'));
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const port = 38_000 + Math.floor(Math.random() * 1000);
  // The API's own settings (lock and acquire timeouts, per-user budgets);
  // the benchmark servers' per-user request budget is off.
  const server = await startServer(db.url, port, {}, appDir);
  try {
    const [victim, attacker, alice, bob] = await makeUsers(admin, 4);
    const base = `http://127.0.0.1:${port}`;
    const post = (as: { token: string }, body: unknown): RequestInit => ({
      method: 'POST',
      headers: { authorization: `Bearer ${as.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await timed(`${base}/messages`, post(attacker!, { receiverId: victim!.id, content: 'first' }));
    await timed(`${base}/messages`, post(alice!, { receiverId: bob!.id, content: 'first' }));
    await admin.query('begin');
    await admin.query('select * from app_private.delivery_counters where user_id = $1 for update', [victim!.id]);
    log(`holding user ${victim!.id}'s counter; 15 senders to them, one unrelated reader and sender`);
    const until = Date.now() + 8000;
    // The lock goes at the end of the window, whatever the requests do (on
    // a server where they all wait for it, nothing else would end it).
    const released = sleep(8000).then(() => admin.query('rollback'));
    const blocked: Record<string, number> = {};
    const attackers = Array.from({ length: 15 }, async (_, i) => {
      while (Date.now() < until) {
        const r = await timed(`${base}/messages`, post(attacker!, { receiverId: victim!.id, content: `stuck ${i}` }));
        blocked[r.status] = (blocked[r.status] ?? 0) + 1;
      }
    });
    await sleep(300);
    const inbox: { ms: number; status: number }[] = [];
    const sends: { ms: number; status: number }[] = [];
    while (Date.now() < until) {
      inbox.push(await timed(`${base}/inbox/unread`, { headers: { authorization: `Bearer ${bob!.token}` } }));
      sends.push(await timed(`${base}/messages`, post(alice!, { receiverId: bob!.id, content: 'unrelated' })));
    }
    await released;
    await Promise.all(attackers);
    const result: IsolationBench = { date: new Date().toISOString(), app: appDir === projectRoot ? 'this checkout' : appDir, inbox: summary(inbox), send: summary(sends), blockedSends: blocked };
    log(`unrelated inbox p50 ${result.inbox.p50.toFixed(1)} ms p99 ${result.inbox.p99.toFixed(1)} (${JSON.stringify(result.inbox.statuses)}); send p50 ${result.send.p50.toFixed(1)} p99 ${result.send.p99.toFixed(1)} (${JSON.stringify(result.send.statuses)}); blocked sends ${JSON.stringify(blocked)}`);
    const out = argValue('--out') ?? path.join(projectRoot, 'bench', 'isolation.json');
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${out}`);
  } finally {
    await stopServer(server);
    await admin.end();
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
