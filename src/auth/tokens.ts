import crypto from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { HttpError } from '../http-errors';

/** 256 random bits, URL-safe. Only its SHA-256 is stored. */
export function newToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return crypto.createHash('sha256').update(token).digest();
}

/** A bearer token is 43 base64url characters; anything else is not one of ours. */
export function isWellFormedToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}

/**
 * At most `maxConcurrent` argon2 computations run at once (each takes a
 * libuv thread and 19 MiB for ~30-50 ms); up to `maxQueued` more wait their
 * turn; beyond that the caller gets 503 PASSWORD_CHECKS_BUSY with
 * Retry-After at once, instead of every login in the process slowing down.
 * Configured once at start-up (ARGON2_MAX_CONCURRENT, ARGON2_MAX_QUEUED).
 */
const argon2Limits = { maxConcurrent: 2, maxQueued: 32 };
let running = 0;
const waiting: (() => void)[] = [];
/** How many argon2 computations ran in this process (the tests count them). */
export const argon2Stats = { computed: 0 };

export function configureArgon2(limits: { maxConcurrent: number; maxQueued: number }): void {
  Object.assign(argon2Limits, limits);
}

async function limited<T>(work: () => Promise<T>): Promise<T> {
  if (running >= argon2Limits.maxConcurrent) {
    if (waiting.length >= argon2Limits.maxQueued) {
      throw new HttpError(503, 'PASSWORD_CHECKS_BUSY', 'too many password checks at once; try again shortly', undefined, {
        'Retry-After': '1',
      });
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running++;
  }
  try {
    argon2Stats.computed++;
    return await work();
  } finally {
    // Hand the slot to the next waiter, or free it.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** argon2id with the library's defaults (19 MiB, t=2, p=1: OWASP's minimum). */
export function hashPassword(password: string): Promise<string> {
  return limited(() => hash(password));
}

// Verifying against this when the username is unknown keeps login's timing
// the same for existing and missing accounts.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(passwordHash: string | null, password: string): Promise<boolean> {
  if (!passwordHash) {
    dummyHash ??= hash('signalbox-timing-equaliser');
    const equaliser = await dummyHash;
    await limited(() => verify(equaliser, password).catch(() => false));
    return false;
  }
  return limited(() => verify(passwordHash, password).catch(() => false));
}
