import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { minuteBudget } from '../budgets';
import { argon2Hash, argon2Verify } from '../auth/tokens';
import { HttpError, rateLimited } from '../http-errors';

/**
 * Every argon2 computation of the app goes through here: hashing a new
 * password, and checking one within its budgets.
 *
 * Two kinds of attempt, as in OWASP's "Slow Down Online Guessing Attacks
 * with Device Cookies": a trusted one presents a device token issued to
 * this account at an earlier successful login (routes/auth.ts), any other
 * is untrusted. Budgets, checked before any argon2 work, in the rate-limit
 * store (Redis when CACHE_URL is set, so every instance shares them; each
 * instance's memory while Redis is away). Per window (a minute), with
 * `max` = LOGIN_RATE_LIMIT:
 * - trusted: `max` failures per device token; a token past it is judged as
 *   untrusted for the rest of the window. Nothing else: an attacker
 *   cannot spend the owner's budget without the owner's device.
 * - untrusted: `max` failures per address + account, 3× that per address
 *   (all accounts), 6× that password checks per address (failed or not),
 *   and 10× that attempts per account from all addresses. The last is the
 *   lockout a distributed guess runs into, so it is counted when an attempt
 *   is admitted (atomic in the store: concurrent guesses cannot overshoot
 *   it); while it holds, only trusted devices sign in to that account.
 * Excess answers 429 RATE_LIMITED with Retry-After, without hashing.
 *
 * Concurrency: at most `maxConcurrent` computations run at once (each takes
 * a libuv thread and 19 MiB for ~30-50 ms), up to `maxQueued` more wait;
 * beyond that 503 PASSWORD_CHECKS_BUSY with Retry-After at once, instead of
 * every login of the process slowing down. Trusted attempts are served
 * first: they leave the queue before untrusted ones, and untrusted work
 * (sign-ups' hashes included) may hold only part of the slots (half,
 * rounded down, at least one) and of the queue (half, rounded up), so a
 * flood of strangers leaves room for the owners.
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
  check(
    request: FastifyRequest,
    subject: PasswordSubject,
    passwordHash: string | null,
    password: string,
    trustedDevice?: Buffer | null,
  ): Promise<boolean>;
  /** argon2 computations this app has run (the tests count them). */
  readonly computed: number;
  /** Checks running now, and waiting for a slot (the metrics). */
  readonly running: number;
  readonly queued: number;
};

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords;
  }
}

export type PasswordsOptions = { failuresPerAccountAndAddress: number; maxConcurrent: number; maxQueued: number };

const SUBJECT = Symbol('password subject');
const DEVICE = Symbol('trusted device');
type WithSubject = FastifyRequest & { [SUBJECT]?: string; [DEVICE]?: string };
const subjectKey = (s: PasswordSubject) => ('username' in s ? `u:${s.username}` : `id:${s.userId}`);

async function passwordsPlugin(app: FastifyInstance, options: PasswordsOptions): Promise<void> {
  const max = options.failuresPerAccountAndAddress;
  const budget = (max: number, key: (r: WithSubject) => string) => minuteBudget<WithSubject>(app, max, key);
  const untrustedFailures = [
    { what: 'this account from this address', budget: budget(max, (r) => `pw-fail:${r.ip}:${r[SUBJECT]}`) },
    { what: 'this address', budget: budget(3 * max, (r) => `pw-fail-ip:${r.ip}`) },
  ];
  const checksPerAddress = budget(6 * max, (r) => `pw-checks-ip:${r.ip}`);
  const untrustedPerAccount = budget(10 * max, (r) => `pw-untrusted-account:${r[SUBJECT]}`);
  const deviceFailures = budget(max, (r) => `pw-fail-device:${r[DEVICE]}:${r[SUBJECT]}`);
  const refuse = (what: string, seconds: number) =>
    rateLimited(`too many password attempts for ${what}; try again in ${seconds} s`, seconds);

  /** Whether this attempt is trusted; throws 429 when an untrusted one is over a budget. */
  async function admit(request: WithSubject): Promise<boolean> {
    if (request[DEVICE] !== undefined && (await deviceFailures.spent(request)) === null) return true;
    for (const { what, budget } of untrustedFailures) {
      const wait = await budget.spent(request);
      if (wait !== null) throw refuse(what, wait);
    }
    let wait = await checksPerAddress.spend(request);
    if (wait !== null) throw refuse('this address', wait);
    wait = await untrustedPerAccount.spend(request);
    if (wait !== null) throw refuse('this account from unrecognised devices', wait);
    return false;
  }

  // The concurrency bound: a slot, or a place in its kind's queue, or 503.
  const untrustedSlots = Math.max(1, Math.floor(options.maxConcurrent / 2));
  const untrustedQueue = Math.ceil(options.maxQueued / 2);
  let running = 0;
  let untrustedRunning = 0;
  let computed = 0;
  const waiting = { trusted: [] as (() => void)[], untrusted: [] as (() => void)[] };
  const busy = () =>
    new HttpError(503, 'PASSWORD_CHECKS_BUSY', 'too many password checks at once; try again shortly', undefined, { 'Retry-After': '1' });

  function claim(trusted: boolean): void {
    running++;
    if (!trusted) untrustedRunning++;
  }

  /** Hands free slots to waiters, trusted ones first; a waiter wakes holding its slot. */
  function dispatch(): void {
    while (running < options.maxConcurrent) {
      const trusted = waiting.trusted.length > 0;
      if (!trusted && (untrustedRunning >= untrustedSlots || waiting.untrusted.length === 0)) return;
      claim(trusted);
      (trusted ? waiting.trusted : waiting.untrusted).shift()!();
    }
  }

  async function bounded<T>(trusted: boolean, work: () => Promise<T>): Promise<T> {
    if (running < options.maxConcurrent && (trusted || untrustedRunning < untrustedSlots)) {
      claim(trusted);
    } else {
      const queue = trusted ? waiting.trusted : waiting.untrusted;
      if (queue.length >= (trusted ? options.maxQueued : untrustedQueue)) throw busy();
      await new Promise<void>((resolve) => queue.push(resolve));
    }
    try {
      computed++;
      return await work();
    } finally {
      running--;
      if (!trusted) untrustedRunning--;
      dispatch();
    }
  }

  app.decorate('passwords', {
    hash: (password) => bounded(false, () => argon2Hash(password)),
    async check(request, subject, passwordHash, password, trustedDevice) {
      const r = request as WithSubject;
      r[SUBJECT] = subjectKey(subject);
      if (trustedDevice) r[DEVICE] = trustedDevice.toString('hex');
      const trusted = await admit(r);
      const ok = await bounded(trusted, () => argon2Verify(passwordHash, password));
      if (!ok) {
        if (trusted) await deviceFailures.spend(r);
        else for (const { budget } of untrustedFailures) await budget.spend(r);
      }
      return ok;
    },
    get computed() {
      return computed;
    },
    get running() {
      return running;
    },
    get queued() {
      return waiting.trusted.length + waiting.untrusted.length;
    },
  } satisfies Passwords);
}

export default fp(passwordsPlugin, { name: 'passwords', fastify: '5.x', dependencies: ['@fastify/rate-limit', 'errors'] });
