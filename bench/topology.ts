/**
 * `npm run bench:topology [-- --seconds 5 --rounds 3]`: the cost of the
 * scaled-out topology (issue 15) on the real processes of scripts/cluster.ts.
 *
 * Three set-ups of the same server (bench/server.ts, view cache off so
 * every read reaches a database), interleaved round by round:
 * - direct: the pool on the primary;
 * - PgBouncer: the pool through PgBouncer in transaction mode (8 server
 *   connections for the app's 10), LISTEN on the primary;
 * - PgBouncer + replica: the same, read views on the streaming replica.
 * Loads: sends (POST /messages) and conversation pages (GET, 50 messages)
 * at 1 and 16 connections. Then, under the send load, the replica's lag as
 * /healthz reports it and as the primary's pg_stat_replication measures it.
 *
 * On this 2-core machine the primary, the replica, PgBouncer, the server
 * and the load generator share the same cores: the point is correctness
 * and overhead, not speed-up (bench/REPORT.md says what N machines give).
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startCluster } from '../scripts/cluster';
import { loadConfig } from '../src/config';
import { ensureRoles, migrateDatabase } from '../src/db/setup';
import { projectRoot } from '../src/paths';
import { argValue, autocannonLoad, log, makeUsers, median, sleep, startServer, stopServer, type Load } from './lib';

const SETUPS = ['direct', 'pgbouncer', 'pgbouncer+replica'] as const;
type Setup = (typeof SETUPS)[number];
const LOADS = [
  { name: 'send', connections: 1 },
  { name: 'send', connections: 16 },
  { name: 'read', connections: 1 },
  { name: 'read', connections: 16 },
] as const;

export type TopologyResult = {
  date: string;
  command: string;
  seconds: number;
  rounds: number;
  bouncerServerConnections: number;
  appPoolSize: number;
  cells: { setup: Setup; load: 'send' | 'read'; connections: number; rps: number; p50: number; p99: number; runs: Load[] }[];
  replicaShareOfReads: number;
  lag: { healthzMaxMs: number; healthzP50Ms: number; replayLagMaxMs: number | null; samples: number; sendsPerSecond: number };
};

async function main(): Promise<void> {
  const seconds = Number(argValue('--seconds') ?? 5);
  const rounds = Number(argValue('--rounds') ?? 3);
  const bouncerPool = 8;
  const appPool = 10;
  log('cluster: primary, streaming replica, PgBouncer (scripts/cluster.ts)');
  const cluster = await startCluster({ poolSize: bouncerPool });
  // Interrupted: leave no server of the cluster behind.
  const interrupted = () => void cluster.down().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
    await ensureRoles(cluster.urls.primary, config.DATABASE_VISITOR);
    await migrateDatabase(cluster.urls.primary, config.DATABASE_VISITOR, { quiet: true });
    const primary = new pg.Client({ connectionString: cluster.urls.primary });
    await primary.connect();
    const [sender, receiver, reader, partner] = await makeUsers(primary, 4);
    // The reader's conversation: 500 messages, read 50 at a time.
    await primary.query(
      `insert into app_public.messages (sender_id, receiver_id, content)
       select case when g % 2 = 0 then $1::bigint else $2::bigint end, case when g % 2 = 0 then $2::bigint else $1::bigint end, 'message ' || g
       from generate_series(1, 500) g`,
      [reader!.id, partner!.id],
    );
    await primary.query('analyze');
    const replica = new pg.Client({ connectionString: cluster.urls.replica });
    await replica.connect();
    const replayed = async () => {
      const want = (await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      for (;;) {
        const { rows } = await replica.query<{ ok: boolean }>('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [want]);
        if (rows[0]!.ok) return;
        await sleep(50);
      }
    };
    await replayed();

    const envOf = (setup: Setup): Record<string, string> => ({
      CACHE_TTL_SECONDS: '0',
      DATABASE_POOL_SIZE: String(appPool),
      LISTEN_DATABASE_URL: cluster.urls.primary,
      ...(setup === 'pgbouncer+replica' ? { DATABASE_READ_URL: cluster.urls.replica } : {}),
    });
    const urlOf = (setup: Setup) => (setup === 'direct' ? cluster.urls.primary : cluster.urls.bouncer);
    const port = 3400;
    const runs = new Map<string, Load[]>();
    // What the instance's router counted (GET /healthz: replicas[].reads).
    const replicaReads = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return ((await res.json()) as { replicas: { reads: number }[] }).replicas[0]?.reads ?? 0;
    };
    let readsOnReplica = 0;
    let readsServed = 0;

    for (let round = 1; round <= rounds; round++) {
      for (const setup of SETUPS) {
        const server = await startServer(urlOf(setup), port, envOf(setup));
        try {
          for (const load of LOADS) {
            const before = setup === 'pgbouncer+replica' && load.name === 'read' ? await replicaReads() : 0;
            const result = await autocannonLoad({
              port,
              ...(load.name === 'send'
                ? { method: 'POST' as const, path: '/messages', body: JSON.stringify({ receiverId: receiver!.id, content: 'bench' }), token: sender!.token }
                : { path: `/conversations/${partner!.id}/messages?limit=50`, token: reader!.token }),
              connections: load.connections,
              seconds,
            });
            if (setup === 'pgbouncer+replica' && load.name === 'read') {
              readsOnReplica += (await replicaReads()) - before;
              readsServed += result.requests ?? 0;
            }
            const key = `${setup}|${load.name}|${load.connections}`;
            runs.set(key, [...(runs.get(key) ?? []), result]);
            log(`round ${round} ${setup.padEnd(18)} ${load.name} ${String(load.connections).padStart(2)} conn: ${result.rps.toFixed(0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms`);
          }
        } finally {
          await stopServer(server);
        }
        await replayed();
      }
    }

    // The lag under the send load, as the service sees it and as PostgreSQL measures it.
    log('replica lag under the send load (16 connections)');
    const server = await startServer(cluster.urls.bouncer, port, envOf('pgbouncer+replica'));
    const healthLags: number[] = [];
    let replayLagMax: number | null = null;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        const body = (await res.json()) as { replicas: { lagMs: number | null }[] };
        const lag = body.replicas[0]?.lagMs;
        if (typeof lag === 'number') healthLags.push(lag);
        const { rows } = await primary.query<{ ms: number | null }>(
          `select (extract(epoch from replay_lag) * 1000)::float8 as ms from pg_stat_replication limit 1`,
        );
        const ms = rows[0]?.ms;
        if (typeof ms === 'number') replayLagMax = Math.max(replayLagMax ?? 0, ms);
        await sleep(100);
      }
    })();
    const lagLoad = await autocannonLoad({
      port,
      method: 'POST',
      path: '/messages',
      body: JSON.stringify({ receiverId: receiver!.id, content: 'lag' }),
      token: sender!.token,
      connections: 16,
      seconds: 10,
    });
    sampling = false;
    await sampler;
    await stopServer(server);
    await primary.end();
    await replica.end();

    const cells = [...runs.entries()].map(([key, list]) => {
      const [setup, load, connections] = key.split('|') as [Setup, 'send' | 'read', string];
      return {
        setup,
        load,
        connections: Number(connections),
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.p50)),
        p99: median(list.map((r) => r.p99)),
        runs: list,
      };
    });
    const result: TopologyResult = {
      date: new Date().toISOString(),
      command: `npm run bench:topology -- --seconds ${seconds} --rounds ${rounds}`,
      seconds,
      rounds,
      bouncerServerConnections: bouncerPool,
      appPoolSize: appPool,
      cells,
      replicaShareOfReads: readsServed > 0 ? Math.min(1, Math.max(0, readsOnReplica / readsServed)) : 0,
      lag: {
        healthzMaxMs: Math.max(...healthLags),
        healthzP50Ms: median(healthLags),
        replayLagMaxMs: replayLagMax,
        samples: healthLags.length,
        sendsPerSecond: lagLoad.rps,
      },
    };
    fs.writeFileSync(path.join(projectRoot, 'bench', 'topology.json'), `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote bench/topology.json; lag under ${lagLoad.rps.toFixed(0)} sends/s: /healthz max ${result.lag.healthzMaxMs} ms, replay_lag max ${replayLagMax ?? '—'} ms`);
  } finally {
    await cluster.down();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
