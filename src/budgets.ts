import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/rate-limit';

/**
 * A budget of `max` a minute per key, counted in the app's rate-limit store
 * (Redis with CACHE_URL, so every instance shares it; the instance's own
 * memory without it or while Redis is away: src/cache/rate-limit-store.ts).
 * Each call answers the seconds until the budget refills when it is spent,
 * or null while it is not.
 */
export type MinuteBudget<R extends FastifyRequest = FastifyRequest> = {
  /** Counts one and answers whether that one was over the budget. */
  spend(request: R): Promise<number | null>;
  /** Answers whether the budget is spent, counting nothing. */
  spent(request: R): Promise<number | null>;
};

export function minuteBudget<R extends FastifyRequest = FastifyRequest>(
  app: FastifyInstance,
  max: number,
  key: (request: R) => string,
): MinuteBudget<R> {
  const limit = app.createRateLimit({ max, timeWindow: '1 minute', keyGenerator: (request) => key(request as R) });
  return {
    async spend(request) {
      const state = await limit(request);
      return !state.isAllowed && state.isExceeded ? state.ttlInSeconds : null;
    },
    async spent(request) {
      const state = await limit(request, { increment: false });
      return !state.isAllowed && state.remaining === 0 ? state.ttlInSeconds : null;
    },
  };
}
