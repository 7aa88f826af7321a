import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

const changeRow = z.object({ touched: z.string().nullable(), revoked: z.string().nullable() });

/**
 * What a writing transaction changed, as its triggers recorded it:
 * `users` whose views changed (signalbox.touched), users whose sessions
 * were deleted or changed (signalbox.revoked; 'all' above 200 of them).
 */
export type Change = { users: number[]; revokedSessions: number[] | 'all' };

const idList = (list: string | null): number[] => (list ? [...new Set(list.split(',').map(Number))] : []);

/**
 * The users whose views or sessions this transaction changed, recorded by
 * the announcing triggers in transaction-local settings; null when the
 * triggers recorded nothing.
 * Read at the end of a writing transaction, before COMMIT ends the settings.
 */
export async function changeOfTransaction(connection: CommonQueryMethods): Promise<Change | null> {
  const row = await connection.one(sql.type(changeRow)`
    select nullif(current_setting('signalbox.touched', true), '') as touched,
           nullif(current_setting('signalbox.revoked', true), '') as revoked
  `);
  return changeOf(row.touched, row.revoked);
}

/** The Change the two settings describe (as a one-statement write answers them); null when both are empty. */
export function changeOf(touched: string | null, revoked: string | null): Change | null {
  if (touched === null && revoked === null) return null;
  const revokedSessions = revoked?.split(',').includes('all') ? 'all' : idList(revoked);
  return { users: idList(touched), revokedSessions };
}
