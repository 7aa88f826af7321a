import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

const changeRow = z.object({ touched: z.string().nullable(), pid: z.number() });

/** What a writing transaction changed, as its triggers recorded it (signalbox.touched). */
export type Change = { users: number[]; backendPid: number };

/**
 * The users whose views this transaction changed, recorded by the
 * announcing triggers in the transaction-local setting signalbox.touched,
 * and the backend's pid (its NOTIFYs carry it). Read at the end of a
 * writing transaction, before COMMIT ends the setting.
 */
export async function changeOfTransaction(connection: CommonQueryMethods): Promise<Change> {
  const row = await connection.one(sql.type(changeRow)`
    select nullif(current_setting('signalbox.touched', true), '') as touched, pg_backend_pid() as pid
  `);
  const users = row.touched ? [...new Set(row.touched.split(',').map(Number))] : [];
  return { users, backendPid: row.pid };
}
