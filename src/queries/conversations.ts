import { sql, type CommonQueryMethods } from 'slonik';
import type { Caller, WriteCaller } from '../db/transaction';
import { changeOf, type Change } from './changes';
import { z } from 'zod';
import { messageRow, userRow } from './schemas';
import type { Page } from './pages';
import { oneStatementView } from './views';

export const groupRef = z.object({ id: z.number().int(), title: z.string() });

export const conversationRow = z.object({
  kind: z.enum(['direct', 'group']),
  /** The other participant of a direct conversation; null for a group. */
  user: userRow.nullable(),
  /** The group; null for a direct conversation. */
  group: groupRef.nullable(),
  lastMessage: messageRow,
  unreadCount: z.number().int(),
});
export type Conversation = z.infer<typeof conversationRow>;

/**
 * The caller's conversations, direct and group together, most recent
 * first (conversationRow's shape), as the API's JSON text:
 * app_public.conversation_list (migration 000020), one statement that sets
 * the caller and costs the number of conversations, not of messages — one
 * backward index step per conversation for its newest message, unread
 * counts for the page's rows only. Paginated by the last message's id.
 */
export async function getConversationList(connection: CommonQueryMethods, caller: Caller, page: Page): Promise<string> {
  const list = await oneStatementView(connection, caller,
    sql.fragment`app_public.conversation_list(${caller.role}, ${caller.id}, ${page.before ?? null}, ${page.limit})`);
  if (list === null) throw new Error('conversation_list answered nothing for a signed-in caller');
  return list;
}

/**
 * The messages between the caller and one user, newest first, as the
 * API's JSON text ({messages, nextCursor}), or null when that user does not
 * exist: app_public.conversation_page (migration 000013), one statement
 * that sets the caller itself — run it on a pool, outside a transaction,
 * and the request costs one round trip instead of four.
 *
 * A plan that does not depend on the statistics (migration 000008): the
 * page is a range of messages_conversation_idx's own key, (user_low,
 * user_high, id) from (a, b, 0) to (a, b, before), in that key's order
 * descending. No other index yields that order or bounds that range, so
 * the plan is that index walked backwards from the cursor, stopping after
 * the page — not the primary key walked backwards and filtered, which the
 * planner chose when stale statistics made the conversation look like most
 * of the table (50,000 rows read for 51).
 *
 * Bitmap scans are off for the statement: under row-level security the
 * planner multiplies the policy's `sender_id = me OR receiver_id = me`
 * selectivity with the conversation's as if they were independent, expects
 * a handful of rows, and would pick a bitmap AND of three indexes plus a
 * sort, which reads the whole conversation.
 */
export async function getConversationPage(
  connection: CommonQueryMethods,
  caller: Caller,
  other: number,
  page: Page,
): Promise<string | null> {
  return oneStatementView(connection, caller,
    sql.fragment`app_public.conversation_page(${caller.role}, ${caller.id}, ${other}, ${page.before ?? null}, ${page.limit})`);
}

const readAnswer = z.object({ answer: z.string().nullable() });

/**
 * Marks every unread message from `other` to the caller read: how many, or
 * null when that user does not exist; with what the triggers recorded.
 * app_public.read_conversation (migration 000024): one statement that sets
 * the caller and the request's settings itself, the UPDATE over the
 * partial unread index, and the recorded change in its answer — run it on
 * the primary's pool, outside a transaction (request.writeStatement).
 */
export async function markConversationRead(
  connection: CommonQueryMethods,
  caller: WriteCaller,
  other: number,
): Promise<{ result: number | null; change: Change | null }> {
  const answer = await connection.oneFirst(sql.type(readAnswer)`
    select app_public.read_conversation(${caller.role}, ${caller.id}, ${other}, ${caller.lockTimeoutMs},
                                        ${caller.instance}, ${caller.requestId}) as answer
  `);
  if (answer === null) return { result: null, change: null };
  const { marked, touched, revoked } = JSON.parse(answer) as { marked: number; touched: string | null; revoked: string | null };
  return { result: marked, change: changeOf(touched, revoked) };
}
