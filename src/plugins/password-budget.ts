import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type {} from '@fastify/rate-limit';
import { HttpError } from '../http-errors';

/**
 * Budgets for every route that verifies a password (login, DELETE /me),
 * checked before any argon2 work, in the rate-limit store: Redis when
 * CACHE_URL is set, so every instance shares one budget, else memory.
 *
 * Failures are counted, not attempts, per address + account, so somebody
 * guessing from elsewhere cannot lock the owner out: the owner's address has
 * its own counter. Per window (a minute):
 * - failures per address + account: `failuresPerAccountAndAddress` (LOGIN_RATE_LIMIT)
 * - failures per address, all accounts: 3× that
 * - failures per account, all addresses: 10× that (slows a distributed guess
 *   without letting one address lock anybody out)
 * - password checks per address, failed or not: 6× that (the argon2 budget)
 * Excess answers 429 RATE_LIMITED with Retry-After, without hashing.
 */

export type PasswordSubject = { username: string } | { userId: number };

export type PasswordBudget = {
  /** Before verifying: refuses when a budget is spent; counts the check. */
  admit(request: FastifyRequest, subject: PasswordSubject): Promise<void>;
  /** After a wrong password: counts the failure. */
  failed(request: FastifyRequest, subject: PasswordSubject): Promise<void>;
};

declare module 'fastify' {
  interface FastifyInstance {
    passwordBudget: PasswordBudget;
  }
}

const SUBJECT = Symbol('password subject');
type WithSubject = FastifyRequest & { [SUBJECT]?: string };
const subjectKey = (s: PasswordSubject) => ('username' in s ? `u:${s.username}` : `id:${s.userId}`);

async function passwordBudgetPlugin(app: FastifyInstance, options: { failuresPerAccountAndAddress: number }): Promise<void> {
  const max = options.failuresPerAccountAndAddress;
  const limiter = (max: number, key: (r: WithSubject) => string) =>
    app.createRateLimit({ max, timeWindow: '1 minute', keyGenerator: (r) => key(r as WithSubject) });
  const failures = [
    { what: 'this account from this address', check: limiter(max, (r) => `pw-fail:${r.ip}:${r[SUBJECT]}`) },
    { what: 'this address', check: limiter(3 * max, (r) => `pw-fail-ip:${r.ip}`) },
    { what: 'this account', check: limiter(10 * max, (r) => `pw-fail-account:${r[SUBJECT]}`) },
  ];
  const checks = limiter(6 * max, (r) => `pw-checks-ip:${r.ip}`);

  const refuse = (what: string, ttlInSeconds: number) =>
    new HttpError(429, 'RATE_LIMITED', `too many password attempts for ${what}; try again in ${ttlInSeconds} s`, undefined, {
      'Retry-After': String(Math.max(1, ttlInSeconds)),
    });

  app.decorate('passwordBudget', {
    async admit(request, subject) {
      (request as WithSubject)[SUBJECT] = subjectKey(subject);
      for (const { what, check } of failures) {
        const state = await check(request, { increment: false });
        if (!state.isAllowed && state.remaining === 0) throw refuse(what, state.ttlInSeconds);
      }
      const state = await checks(request);
      if (!state.isAllowed && state.isExceeded) throw refuse('this address', state.ttlInSeconds);
    },
    async failed(request, subject) {
      (request as WithSubject)[SUBJECT] = subjectKey(subject);
      for (const { check } of failures) await check(request);
    },
  } satisfies PasswordBudget);
}

export default fp(passwordBudgetPlugin, { name: 'password-budget', fastify: '5.x', dependencies: ['@fastify/rate-limit', 'errors'] });
