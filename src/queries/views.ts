import { sql, type CommonQueryMethods, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';
import type { Caller } from '../db/transaction';

const viewText = z.object({ view: z.string().nullable() });

/**
 * A view in one statement: `call` is one of the functions that set the
 * request role and the caller for their own statement and answer the API's
 * JSON text (app_public.conversation_page, conversation_list, group_page,
 * me_view, message_view, history_view, inbox_page, notifications_page). Run
 * on a pool, outside any transaction: one round trip, where BEGIN, the
 * settings, the query and COMMIT were four; the route passes the text
 * through (reply.sendJson). null: nothing the caller may read.
 *
 * The request's id rides along as the statement's application_name, as in
 * every transaction of a request (db/transaction.ts): the CTE runs first
 * (a volatile function keeps it from being inlined), and the setting ends
 * with the statement's own transaction.
 */
export async function oneStatementView(connection: CommonQueryMethods, caller: Caller, call: FragmentSqlToken): Promise<string | null> {
  if (caller.requestId === undefined) return connection.oneFirst(sql.type(viewText)`select ${call} as view`);
  return connection.oneFirst(sql.type(viewText)`
    with request as (select set_config('application_name', ${`signalbox ${caller.requestId}`}, true))
    select ${call} as view from request
  `);
}
