import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type {} from '@fastify/rate-limit';
import { argon2Hash, argon2Verify } from '../auth/tokens';
import { HttpError, rateLimited } from '../http-errors';

/**
 * Every argon2 computation of the app goes through here: hashing a new
 * password, and checking one within its budgets.
 *
 * Budgets, checked before any argon2 work, in the rate-limit store (Redis
 * when CACHE_URL is set, so every instance shares them, else memory).
 * Failures are counted, not attempts, per address + account, so somebody
 * guessing from elsewhere cannot lock the owner out: the owner's address has
 * its own counter. Per window (a minute):
 * - failures per address + account: `failuresPerAccountAndAddress` (LOGIN_RATE_LIMIT)
 * - failures per address, all accounts: 3× that
 * - failures per account, all addresses: 10× that (slows a distributed guess
 *   without letting one address lock anybody out)
 * - password checks per address, failed or not: 6× that (the argon2 budget)
 * Excess answers 429 RATE_LIMITED with Retry-After, without hashing.
 *
 * Concurrency: at most `maxConcurrent` computations run at once (each takes
 * a libuv thread and 19 MiB for ~30-50 ms), up to `maxQueued` more wait;
 * beyond that 503 PASSWORD_CHECKS_BUSY with Retry-After at once, instead of
 * every login of the process slowing down.
 */

export type PasswordSubject = { username: string } | { userId: number };

export type Passwords = {
  /** An argon2id hash of a new password (within the concurrency bound). */
  hash(password: string): Promise<string>;
  /**
   * Whether `password` matches `passwordHash` (null: no such account, checked
   * against a dummy hash so timing does not tell). Refuses with 429 when a
   * budget is spent, before any argon2 work; counts a wrong password.
   */
  check(request: FastifyRequest, subject: PasswordSubject, passwordHash: string | null, password: string): Promise<boolean>;
  /** argon2 computations this app has run (the tests count them). */
  readonly computed: number;
};

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords;
  }
}

export type PasswordsOptions = { failuresPerAccountAndAddress: number; maxConcurrent: number; maxQueued: number };

const SUBJECT = Symbol('password subject');
type WithSubject = FastifyRequest & { [SUBJECT]?: string };
const subjectKey = (s: PasswordSubject) => ('username' in s ? `u:${s.username}` : `id:${s.userId}`);

async function passwordsPlugin(app: FastifyInstance, options: PasswordsOptions): Promise<void> {
  const max = options.failuresPerAccountAndAddress;
  const limiter = (max: number, key: (r: WithSubject) => string) =>
    app.createRateLimit({ max, timeWindow: '1 minute', keyGenerator: (r) => key(r as WithSubject) });
  const failures = [
    { what: 'this account from this address', check: limiter(max, (r) => `pw-fail:${r.ip}:${r[SUBJECT]}`) },
    { what: 'this address', check: limiter(3 * max, (r) => `pw-fail-ip:${r.ip}`) },
    { what: 'this account', check: limiter(10 * max, (r) => `pw-fail-account:${r[SUBJECT]}`) },
  ];
  const checksPerAddress = limiter(6 * max, (r) => `pw-checks-ip:${r.ip}`);
  const refuse = (what: string, seconds: number) =>
    rateLimited(`too many password attempts for ${what}; try again in ${seconds} s`, seconds);

  async function admit(request: WithSubject): Promise<void> {
    for (const { what, check } of failures) {
      const state = await check(request, { increment: false });
      if (!state.isAllowed && state.remaining === 0) throw refuse(what, state.ttlInSeconds);
    }
    const state = await checksPerAddress(request);
    if (!state.isAllowed && state.isExceeded) throw refuse('this address', state.ttlInSeconds);
  }

  // The concurrency bound: a slot, or a place in the queue, or 503.
  let running = 0;
  let computed = 0;
  const waiting: (() => void)[] = [];
  async function bounded<T>(work: () => Promise<T>): Promise<T> {
    if (running >= options.maxConcurrent) {
      if (waiting.length >= options.maxQueued) {
        throw new HttpError(503, 'PASSWORD_CHECKS_BUSY', 'too many password checks at once; try again shortly', undefined, {
          'Retry-After': '1',
        });
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running++;
    }
    try {
      computed++;
      return await work();
    } finally {
      // Hand the slot to the next waiter, or free it.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  }

  app.decorate('passwords', {
    hash: (password) => bounded(() => argon2Hash(password)),
    async check(request, subject, passwordHash, password) {
      (request as WithSubject)[SUBJECT] = subjectKey(subject);
      await admit(request);
      const ok = await bounded(() => argon2Verify(passwordHash, password));
      if (!ok) for (const { check } of failures) await check(request);
      return ok;
    },
    get computed() {
      return computed;
    },
  } satisfies Passwords);
}

export default fp(passwordsPlugin, { name: 'passwords', fastify: '5.x', dependencies: ['@fastify/rate-limit', 'errors'] });
