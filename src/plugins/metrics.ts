import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import fastifyMetrics from 'fastify-metrics';
import client from 'prom-client';
import type { PruneRun } from '../jobs/prune';

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts a retention run of this process's worker (server.ts): its deleted rows, or null for a failed run. */
    recordPrune(run: PruneRun | null): void;
  }
}

/** The tables a prune run reports, by PruneRun's field. */
const PRUNED: [keyof PruneRun, string][] = [
  ['sessions', 'sessions'], ['idempotencyKeys', 'idempotency_keys'], ['liveEvents', 'live_events'],
  ['notifications', 'notifications'], ['deletedAccounts', 'deleted_accounts'], ['pruneRuns', 'prune_runs'],
];

/**
 * GET /metrics in Prometheus' text format (fastify-metrics, on prom-client):
 * request duration histograms by route and status, the process's own
 * metrics, and what this service adds, read at scrape time:
 *
 * - signalbox_db_pool_connections{pool, state}: size, in use, waiting (per pool);
 * - signalbox_listen_connected, signalbox_listen_reconnects_total: the LISTEN connection;
 * - signalbox_streams_open: live streams of this process;
 * - signalbox_view_cache_requests_total{result}: cached views served (hit) or built (miss);
 * - signalbox_replica_up, _lag_seconds, _reads_total{replica}: read routing;
 * - signalbox_password_checks{state}: argon2 checks running and queued;
 * - signalbox_prune_runs_total{result}, _deleted_rows_total{table},
 *   _last_success_timestamp_seconds: the retention job this process ran
 *   (server.ts reports each run through app.recordPrune; every run is also
 *   audited in app_private.prune_runs).
 *
 * One registry per app (tests build many apps in one process).
 */
async function metricsPlugin(app: FastifyInstance): Promise<void> {
  const registry = new client.Registry();
  await app.register(fastifyMetrics, {
    endpoint: '/metrics',
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: {
      // Histograms only: the summary (a t-digest per route and status)
      // repeated them at about 2 % of a cheap read's CPU (bench:ceiling
      // --profile on GET /me: tdigest and bintrees).
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      groupStatusCodes: false,
      overrides: { histogram: { registers: [registry] }, summary: { registers: [registry] } },
    },
  });

  new client.Gauge({
    name: 'signalbox_db_pool_connections',
    help: 'Database connections of this process by pool: its size, in use, and requests waiting for one',
    labelNames: ['pool', 'state'],
    registers: [registry],
    collect() {
      for (const g of app.gates()) {
        this.set({ pool: g.name, state: 'size' }, g.size);
        this.set({ pool: g.name, state: 'in_use' }, g.inUse);
        this.set({ pool: g.name, state: 'waiting' }, g.waiting);
      }
    },
  });
  new client.Gauge({
    name: 'signalbox_listen_connected',
    help: 'Whether the LISTEN connection (live streams, cache eviction across instances) is up: 1, down: 0, none configured: -1',
    registers: [registry],
    collect() {
      this.set(app.live.enabled() ? (app.live.listening() ? 1 : 0) : -1);
    },
  });
  new client.Counter({
    name: 'signalbox_listen_reconnects_total',
    help: 'How often the LISTEN connection was lost and made again',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(app.live.reconnects());
    },
  });
  new client.Gauge({
    name: 'signalbox_streams_open',
    help: 'Live event streams open in this process',
    registers: [registry],
    collect() {
      this.set(app.live.count());
    },
  });
  const viewCache = new client.Counter({
    name: 'signalbox_view_cache_requests_total',
    help: 'Cached views (conversation pages and lists) served from the cache (hit) or built (miss)',
    labelNames: ['result'],
    registers: [registry],
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    const result = reply.getHeader('x-cache');
    if (result === 'HIT' || result === 'MISS') viewCache.inc({ result: result.toLowerCase() });
    return payload;
  });
  const replicas = app.reads.report.bind(app.reads);
  new client.Gauge({
    name: 'signalbox_replica_up',
    help: 'Whether a read replica takes reads (1: ok; 0: lagging or down)',
    labelNames: ['replica'],
    registers: [registry],
    collect() {
      for (const r of replicas()) this.set({ replica: r.name }, r.status === 'ok' ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'signalbox_replica_lag_seconds',
    help: 'Upper bound on the age of a replica\'s data, as of the last check (absent while it is down)',
    labelNames: ['replica'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of replicas()) if (r.lagMs !== null && Number.isFinite(r.lagMs)) this.set({ replica: r.name }, r.lagMs / 1000);
    },
  });
  new client.Counter({
    name: 'signalbox_replica_reads_total',
    help: 'Read views a replica has answered for this process',
    labelNames: ['replica'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of replicas()) this.inc({ replica: r.name }, r.reads);
    },
  });
  new client.Gauge({
    name: 'signalbox_password_checks',
    help: 'argon2 password checks running and waiting for a slot',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'running' }, app.passwords.running);
      this.set({ state: 'queued' }, app.passwords.queued);
    },
  });

  const pruneRuns = new client.Counter({
    name: 'signalbox_prune_runs_total',
    help: 'Retention prune runs of this process, by result (ok, failed)',
    labelNames: ['result'],
    registers: [registry],
  });
  const pruned = new client.Counter({
    name: 'signalbox_prune_deleted_rows_total',
    help: 'Rows the retention prune deleted, by table',
    labelNames: ['table'],
    registers: [registry],
  });
  const lastPrune = new client.Gauge({
    name: 'signalbox_prune_last_success_timestamp_seconds',
    help: 'When this process last finished a retention prune (Unix time; absent before the first)',
    registers: [registry],
  });
  app.decorate('recordPrune', (run: PruneRun | null) => {
    pruneRuns.inc({ result: run ? 'ok' : 'failed' });
    if (!run) return;
    for (const [field, table] of PRUNED) pruned.inc({ table }, run[field]);
    lastPrune.set(Date.now() / 1000);
  });
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['db', 'live', 'passwords'] });
