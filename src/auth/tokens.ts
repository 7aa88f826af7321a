import crypto from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

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
 * argon2id with the library's defaults (19 MiB, t=2, p=1: OWASP's minimum).
 * Unbounded: the app calls these through app.passwords (plugins/passwords.ts),
 * which bounds how many run at once and budgets the checks.
 */
export function argon2Hash(password: string): Promise<string> {
  return hash(password);
}

// Verifying against this when the username is unknown keeps login's timing
// the same for existing and missing accounts.
let dummyHash: Promise<string> | undefined;

/** Whether `password` matches; a null hash (no such account) is checked against a dummy, and is false. */
export async function argon2Verify(passwordHash: string | null, password: string): Promise<boolean> {
  if (!passwordHash) {
    dummyHash ??= hash('signalbox-timing-equaliser');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(passwordHash, password).catch(() => false);
}
