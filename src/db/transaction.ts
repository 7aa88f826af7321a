import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';

export type Tx = DatabaseTransactionConnection;

const assumed = z.object({ role: z.string(), user_id: z.string() });

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
    await tx.one(sql.type(assumed)`
      select set_config('role', ${visitorRole}, true) as role,
             set_config('signalbox.user_id', ${String(userId)}, true) as user_id
    `);
    return fn(tx);
  });
}
