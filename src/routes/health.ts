import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { pingDatabase } from '../queries/health';

const extras = {
  cache: z.enum(['memory', 'ok', 'unavailable']).describe('memory: per-process cache; ok/unavailable: the shared Redis cache'),
  events: z.enum(['listening', 'reconnecting', 'off']).describe('the LISTEN connection behind live streams and cache eviction'),
};
const healthy = z.object({ status: z.enum(['ok', 'degraded']), database: z.literal('ok'), ...extras });
const unhealthy = z.object({ status: z.literal('degraded'), database: z.literal('unreachable'), ...extras });

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the database, the cache store and the event connection',
        description: '200 while the database answers (status "degraded" when Redis or the LISTEN connection is down: requests are still served); 503 when it does not.',
        security: [],
        response: { 200: healthy, 503: unhealthy },
      },
    },
    async (request, reply) => {
      const cache = await app.viewCache.check();
      const events = app.live.enabled() ? (app.live.listening() ? 'listening' : 'reconnecting') : 'off';
      try {
        await pingDatabase(app.pool, 2000);
      } catch (error) {
        request.log.warn({ err: error }, 'health check: database unreachable');
        return reply.code(503).send({ status: 'degraded', database: 'unreachable', cache, events });
      }
      const degraded = cache === 'unavailable' || events === 'reconnecting';
      return reply.code(200).send({ status: degraded ? 'degraded' : 'ok', database: 'ok', cache, events });
    },
  );
};

export default routes;
