import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Caller } from '../db/transaction';
import { oneStatementView } from './views';
import { idRow, userRow, type User } from './schemas';

const userColumns = sql.fragment`u.id, u.username, u.display_name as "displayName", u.created_at as "createdAt"`;

/**
 * Accounts and sessions go through SECURITY DEFINER functions in app_public
 * (migration 000018): the runtime role has no way into app_private's tables
 * but these, each doing one thing.
 */

/** Creates a user and their password hash in one call. */
export async function createUser(
  connection: CommonQueryMethods,
  input: { username: string; displayName: string | null; passwordHash: string },
): Promise<User> {
  return connection.one(sql.type(userRow)`
    select ${userColumns} from app_public.register_user(${input.username}, ${input.displayName}, ${input.passwordHash}) u
  `);
}

const credentialRow = userRow.extend({ passwordHash: z.string(), trustedDevice: z.boolean() });
const passwordRow = z.object({ passwordHash: z.string().nullable() });
const sessionRow = z.object({ userId: z.number(), expiresAt: z.string() });

/**
 * The user and password hash for a login, or null for an unknown username;
 * `trustedDevice`: whether the device token the client presented (its
 * SHA-256, or null) was issued to this account.
 */
export async function findCredentials(
  connection: CommonQueryMethods,
  username: string,
  deviceHash: Buffer | null,
): Promise<z.infer<typeof credentialRow> | null> {
  return connection.maybeOne(sql.type(credentialRow)`
    select ${userColumns}, u.password_hash as "passwordHash", u.trusted_device as "trustedDevice"
      from app_public.login_credentials(${username}, ${deviceHash ? sql.binary(deviceHash) : null}) u
  `);
}

/** The signed-in caller's own password hash (run as the caller). */
export async function callerPasswordHash(connection: CommonQueryMethods): Promise<string | null> {
  return connection.oneFirst(sql.type(passwordRow)`select app_public.caller_password_hash() as "passwordHash"`);
}

/** The signed-in user as GET /me shows them: the public fields and whether they moderate. */
export const meRow = userRow.extend({ isModerator: z.boolean() });

/**
 * GET /me: the user and whether they moderate, as the API's JSON text
 * (meRow's shape): app_public.me_view (migration 000023), one statement
 * (queries/views.ts). null when the account is gone.
 */
export function getMeJson(connection: CommonQueryMethods, caller: Caller): Promise<string | null> {
  return oneStatementView(connection, caller, sql.fragment`app_public.me_view(${caller.role}, ${caller.id})`);
}

export async function getUserByUsername(connection: CommonQueryMethods, username: string): Promise<User | null> {
  return connection.maybeOne(sql.type(userRow)`select ${userColumns} from app_public.users u where u.username = ${username}`);
}

/**
 * After a checked password or a sign-up: stores a session by the SHA-256 of
 * its token (the token itself is never stored) and trusts the device for
 * the account (the account keeps its 20 most recently used devices).
 */
export async function createSession(
  connection: CommonQueryMethods,
  input: { userId: number; tokenHash: Buffer; ttlHours: number; deviceHash: Buffer },
): Promise<void> {
  await connection.query(sql.unsafe`
    select app_public.start_session(${input.userId}, ${sql.binary(input.tokenHash)}, ${input.ttlHours}, ${sql.binary(input.deviceHash)})
  `);
}

/** The user and expiry (ms since the epoch) of a live session, or null (unknown, expired or revoked). */
export async function findSession(
  connection: CommonQueryMethods,
  tokenHash: Buffer,
): Promise<{ userId: number; expiresAt: number } | null> {
  const row = await connection.maybeOne(sql.type(sessionRow)`
    select user_id as "userId", expires_at as "expiresAt" from app_public.session_user_id(${sql.binary(tokenHash)})
  `);
  return row && { userId: row.userId, expiresAt: Date.parse(row.expiresAt) };
}

const liveSessionRow = z.object({ tokenHash: z.string(), userId: z.number() });

/**
 * Which of these sessions are still live, in one statement: token hash
 * (hex) to user id. The live streams re-check all their sessions with it
 * on each heartbeat, instead of one query per stream.
 */
export async function findLiveSessions(connection: CommonQueryMethods, tokenHashes: readonly Buffer[]): Promise<Map<string, number>> {
  const hexes = [...new Set(tokenHashes.map((h) => h.toString('hex')))];
  const rows = await connection.any(sql.type(liveSessionRow)`
    select encode(token_hash, 'hex') as "tokenHash", user_id as "userId"
      from app_public.live_sessions(array(select decode(h, 'hex') from unnest(${sql.array(hexes, 'text')}) as h))
  `);
  return new Map(rows.map((r) => [r.tokenHash, r.userId]));
}

export async function deleteSession(connection: CommonQueryMethods, tokenHash: Buffer): Promise<void> {
  await connection.query(sql.unsafe`select app_public.end_session(${sql.binary(tokenHash)})`);
}

/**
 * Deletes the caller's account (RLS allows only their own row). Foreign keys
 * cascade messages, notifications, history and sessions; the triggers audit
 * and announce it (the announcing triggers also record every user whose
 * views changed, for the writer's eviction). Returns whether it was deleted.
 */
export async function deleteAccount(connection: CommonQueryMethods, userId: number): Promise<boolean> {
  const row = await connection.maybeOne(sql.type(idRow)`
    delete from app_public.users where id = ${userId} returning id
  `);
  return row !== null;
}
