import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pingDatabase } from '../queries/health';

const extras = {
  cache: z.enum(['memory', 'ok', 'unavailable']).describe('memory: per-process cache; ok/unavailable: the shared Redis cache'),
  events: z.enum(['listening', 'reconnecting', 'off']).describe('the LISTEN connection behind live streams and cache eviction'),
  replicas: z
    .array(
      z.object({
        name: z.string(),
        status: z.enum(['ok', 'lagging', 'down']).describe('only "ok" replicas take reads'),
        lagMs: z.number().nullable().describe('upper bound on the age of its data (ms); null when down'),
        replayLsn: z.string().nullable(),
        reads: z.number().int().describe('read views it has answered since this instance started'),
      }),
    )
    .describe('the read replicas (DATABASE_READ_URL), as of the last check'),
  pools: z
    .array(z.object({ name: z.string(), size: z.number().int(), inUse: z.number().int(), waiting: z.number().int() }))
    .describe('the primary\'s pools: connections in use, and requests waiting for one (saturated while any wait)'),
};
const healthy = z.object({ status: z.enum(['ok', 'degraded']), database: z.literal('ok'), ...extras });
const unhealthy = z.object({ status: z.literal('degraded'), database: z.literal('unreachable'), ...extras });

const ready = z.object({ status: z.enum(['ready', 'not ready']), reasons: z.array(z.enum(['shutting down', 'database unreachable', 'pool saturated'])) });

declare module 'fastify' {
  interface FastifyInstance {
    /** Set when the process has been asked to stop (decorated in app.ts): /readyz answers 503 from then on. */
    draining: boolean;
  }
}

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/livez',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers (no dependency is checked)',
        description: 'For a restart policy: a database outage does not make this fail, so an orchestrator does not restart healthy processes for it.',
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: whether to send this instance traffic',
        description:
          '503 while the process is shutting down (from SIGTERM, SHUTDOWN_DELAY_MS before it stops accepting), the database ' +
          'does not answer within a second, or requests are waiting for a database connection; 200 otherwise.',
        security: [],
        response: { 200: ready, 503: ready },
      },
    },
    async (request, reply) => {
      const reasons: z.infer<typeof ready>['reasons'] = [];
      if (app.draining) reasons.push('shutting down');
      if (app.gates().some((g) => g.waiting > 0)) reasons.push('pool saturated');
      if (!app.draining) {
        await pingDatabase(app.readPool, 1000).catch((error: unknown) => {
          request.log.warn({ err: error }, 'readiness: database unreachable');
          reasons.push('database unreachable');
        });
      }
      return reply.code(reasons.length ? 503 : 200).send({ status: reasons.length ? 'not ready' : 'ready', reasons });
    },
  );

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the database, the cache store and the event connection',
        description: '200 while the database answers (status "degraded" when Redis, the LISTEN connection or a read replica is down or lagging, or requests are waiting for a database connection: requests are still served, from the primary for reads); 503 when it does not.',
        security: [],
        response: { 200: healthy, 503: unhealthy },
      },
    },
    async (request, reply) => {
      const cache = await app.viewCache.check();
      // Infinity (older than every sample) is not JSON: reported as null.
      const replicas = app.reads.report().map((r) => ({ ...r, lagMs: Number.isFinite(r.lagMs) ? r.lagMs : null }));
      const events = app.live.enabled() ? (app.live.listening() ? 'listening' : 'reconnecting') : 'off';
      const pools = app.gates();
      try {
        await pingDatabase(app.readPool, 2000);
      } catch (error) {
        request.log.warn({ err: error }, 'health check: database unreachable');
        return reply.code(503).send({ status: 'degraded', database: 'unreachable', cache, events, replicas, pools });
      }
      const degraded =
        cache === 'unavailable' || events === 'reconnecting' || replicas.some((r) => r.status !== 'ok') || pools.some((p) => p.waiting > 0);
      return reply.code(200).send({ status: degraded ? 'degraded' : 'ok', database: 'ok', cache, events, replicas, pools });
    },
  );
};

export default routes;
