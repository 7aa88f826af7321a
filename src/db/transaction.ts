import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';

export type Tx = DatabaseTransactionConnection;

/**
 * Transaction-local settings a request's query needs (planner hints such
 * as enable_bitmapscan): set in the same statement as the caller, so they
 * cost no round trip of their own, and gone at COMMIT.
 */
export type TransactionSettings = Readonly<Record<string, string>>;

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
  settings: TransactionSettings = {},
): Promise<T> {
  const extra = Object.entries(settings).map(([name, value]) => sql.fragment`, set_config(${name}, ${value}, true)`);
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`
      select set_config('role', ${visitorRole}, true), set_config('signalbox.user_id', ${String(userId)}, true)
             ${extra.length > 0 ? sql.join(extra, sql.fragment``) : sql.fragment``}
    `);
    return fn(tx);
  });
}
