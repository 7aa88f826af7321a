import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { idRow, userRow, type User } from './schemas';

const userColumns = sql.fragment`u.id, u.username, u.display_name as "displayName", u.created_at as "createdAt"`;

/** Creates a user and their password hash in one statement. */
export async function createUser(
  connection: CommonQueryMethods,
  input: { username: string; displayName: string | null; passwordHash: string },
): Promise<User> {
  return connection.one(sql.type(userRow)`
    with u as (
      insert into app_public.users (username, display_name)
      values (${input.username}, ${input.displayName})
      returning *
    ), secret as (
      insert into app_private.user_secrets (user_id, password_hash)
      select id, ${input.passwordHash} from u
    )
    select ${userColumns} from u
  `);
}

const credentialRow = userRow.extend({ passwordHash: z.string(), trustedDevice: z.boolean() });
const passwordRow = z.object({ passwordHash: z.string() });
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
    select ${userColumns}, s.password_hash as "passwordHash",
           exists (select from app_private.trusted_devices d
                    where d.token_hash = ${deviceHash ? sql.binary(deviceHash) : null} and d.user_id = u.id) as "trustedDevice"
      from app_public.users u
      join app_private.user_secrets s on s.user_id = u.id
     where u.username = ${username}
  `);
}

/** How many trusted devices an account keeps; the least recently used go first. */
export const TRUSTED_DEVICES_PER_ACCOUNT = 20;

/**
 * Trusts a device for an account after a successful login or sign-up (a
 * token already trusted is touched); the account keeps its
 * newest TRUSTED_DEVICES_PER_ACCOUNT devices (the delete's snapshot does not
 * see the row inserted beside it, so it keeps one fewer of the others).
 */
export async function trustDevice(connection: CommonQueryMethods, userId: number, deviceHash: Buffer): Promise<void> {
  await connection.query(sql.unsafe`
    with trusted as (
      insert into app_private.trusted_devices (token_hash, user_id)
      values (${sql.binary(deviceHash)}, ${userId})
      on conflict (token_hash, user_id) do update set last_used_at = now()
    )
    delete from app_private.trusted_devices
     where user_id = ${userId}
       and token_hash <> ${sql.binary(deviceHash)}
       and token_hash not in (select token_hash from app_private.trusted_devices
                               where user_id = ${userId} and token_hash <> ${sql.binary(deviceHash)}
                               order by last_used_at desc limit ${TRUSTED_DEVICES_PER_ACCOUNT - 1})
  `);
}

export async function findPasswordHash(connection: CommonQueryMethods, userId: number): Promise<string | null> {
  return connection.maybeOneFirst(sql.type(passwordRow)`
    select password_hash as "passwordHash" from app_private.user_secrets where user_id = ${userId}
  `);
}

export async function getUserById(connection: CommonQueryMethods, id: number): Promise<User | null> {
  return connection.maybeOne(sql.type(userRow)`select ${userColumns} from app_public.users u where u.id = ${id}`);
}

export async function getUserByUsername(connection: CommonQueryMethods, username: string): Promise<User | null> {
  return connection.maybeOne(sql.type(userRow)`select ${userColumns} from app_public.users u where u.username = ${username}`);
}

/** Stores a session by the SHA-256 of its token; the token itself is never stored. */
export async function createSession(
  connection: CommonQueryMethods,
  input: { userId: number; tokenHash: Buffer; ttlHours: number },
): Promise<void> {
  await connection.query(sql.unsafe`
    insert into app_private.sessions (token_hash, user_id, expires_at)
    values (${sql.binary(input.tokenHash)}, ${input.userId}, now() + make_interval(hours => ${input.ttlHours}))
  `);
}

/** The user and expiry (ms since the epoch) of a live session, or null (unknown, expired or revoked). */
export async function findSession(
  connection: CommonQueryMethods,
  tokenHash: Buffer,
): Promise<{ userId: number; expiresAt: number } | null> {
  const row = await connection.maybeOne(sql.type(sessionRow)`
    select user_id as "userId", expires_at as "expiresAt" from app_private.sessions
     where token_hash = ${sql.binary(tokenHash)} and expires_at > now()
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
      from app_private.sessions
     where token_hash in (select decode(h, 'hex') from unnest(${sql.array(hexes, 'text')}) as h)
       and expires_at > now()
  `);
  return new Map(rows.map((r) => [r.tokenHash, r.userId]));
}

export async function deleteSession(connection: CommonQueryMethods, tokenHash: Buffer): Promise<void> {
  await connection.query(sql.unsafe`delete from app_private.sessions where token_hash = ${sql.binary(tokenHash)}`);
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
