import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';

export type Tx = DatabaseTransactionConnection;

/** Who a request runs as: the user, and the request role (no BYPASSRLS) it runs under. */
export type Caller = { id: number; role: string };

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
  /**
   * How long a statement may wait for a row lock (lock_timeout) before it
   * fails with 55P03 (503 DATABASE_BUSY): a row someone holds costs the
   * requests that need it this long, not a connection for ever. 0: no limit.
   */
  lockTimeoutMs = 0,
): Promise<T> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`
      select set_config('role', ${visitorRole}, true), set_config('signalbox.user_id', ${String(userId)}, true),
             set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)
    `);
    return fn(tx);
  });
}
