import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';

export type Tx = DatabaseTransactionConnection;

/**
 * What one transaction may cost, and who runs it. instance: this API
 * instance's id, which the announcing triggers put in their NOTIFY payloads
 * (migration 000017) so that an instance recognises exactly its own
 * announcements. lockTimeoutMs: how long a statement waits
 * for a row lock before 55P03 (503 DATABASE_BUSY), so a row someone holds
 * costs the requests that need it this long, not a connection for ever
 * (0 or absent: no limit). statementTimeoutMs: a tighter statement_timeout
 * than the pool's, for a request with a budget of its own (a search).
 * snapshot: REPEATABLE READ, READ ONLY (one snapshot for every statement:
 * the export), at the cost of a statement of its own, which must come first.
 * requestId: the request's X-Request-Id, set as application_name for the
 * transaction (pg_stat_activity shows it while the statement runs).
 */
export type TxSettings = { instance?: string; lockTimeoutMs?: number; statementTimeoutMs?: number; snapshot?: boolean; requestId?: string };

/** Who a request runs as: the user, and the request role (no BYPASSRLS) it runs under. */
/** Who a one-statement view runs as: the user, the request role, and the request's id (its application_name). */
export type Caller = { id: number; role: string; requestId?: string };
/** Who a one-statement write runs as: a Caller with the settings a writing transaction has. */
export type WriteCaller = Caller & { requestId: string; lockTimeoutMs: number; instance: string };

/**
 * Runs `fn` in one transaction as the request role (no BYPASSRLS) with the
 * caller set for row-level security and for the triggers (edited_by, the
 * participant checks). Both settings are transaction-local, so a pooled
 * connection never carries one caller's identity into the next request.
 */
export async function asUser<T>(
  pool: DatabasePool,
  visitorRole: string,
  userId: number,
  fn: (tx: Tx) => Promise<T>,
  settings: TxSettings = {},
): Promise<T> {
  // The settings ride in the same statement as the role and the caller: no
  // round trip of their own, and gone at COMMIT.
  const statementTimeout = settings.statementTimeoutMs
    ? sql.fragment`, set_config('statement_timeout', ${`${settings.statementTimeoutMs}ms`}, true)`
    : sql.fragment``;
  const instance = settings.instance ? sql.fragment`, set_config('signalbox.instance', ${settings.instance}, true)` : sql.fragment``;
  // A DBA matches a slow query in pg_stat_activity to the request's logs.
  const application = settings.requestId
    ? sql.fragment`, set_config('application_name', ${`signalbox ${settings.requestId}`}, true)`
    : sql.fragment``;
  return pool.transaction(async (tx) => {
    if (settings.snapshot) await tx.query(sql.unsafe`set transaction isolation level repeatable read, read only`);
    await tx.query(sql.unsafe`
      select set_config('role', ${visitorRole}, true), set_config('signalbox.user_id', ${String(userId)}, true),
             set_config('lock_timeout', ${`${settings.lockTimeoutMs ?? 0}ms`}, true) ${statementTimeout} ${instance} ${application}
    `);
    return fn(tx);
  });
}
