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
): Promise<T> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`
      select set_config('role', ${visitorRole}, true), set_config('signalbox.user_id', ${String(userId)}, true)
    `);
    return fn(tx);
  });
}
