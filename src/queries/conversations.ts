import { sql, type CommonQueryMethods } from 'slonik';
import type { Caller } from '../db/transaction';
import { z } from 'zod';
import { partnerOf, visibleTo } from './participants';
import { messageColumns } from './messages';
import { messageRow, userRow } from './schemas';
import { beforeCursor, paginate, type Page } from './pages';

export const conversationRow = z.object({
  user: userRow,
  lastMessage: messageRow,
  unreadCount: z.number().int(),
});
export type Conversation = z.infer<typeof conversationRow>;

const flatConversationRow = messageRow.extend({
  partnerId: z.number(),
  partnerUsername: z.string(),
  partnerDisplayName: z.string().nullable(),
  partnerCreatedAt: z.string(),
  unreadCount: z.number(),
});

/**
 * One entry per person the caller has exchanged messages with, most recent
 * first: the latest message per partner (DISTINCT ON over the sender and
 * receiver indexes), the partner, and the unread count from the partial
 * unread index. Paginated by the last message's id.
 */
export async function listConversations(
  connection: CommonQueryMethods,
  me: number,
  page: Page,
): Promise<{ conversations: Conversation[]; nextCursor: number | null }> {
  const rows = await connection.any(sql.type(flatConversationRow)`
    with latest as (
      select distinct on (m.partner_id) m.*
        from (select ${partnerOf(me)} as partner_id, m.*
                from app_public.messages m
               where ${visibleTo(me)}) m
       order by m.partner_id, m.id desc
    ), unread as (
      select sender_id as partner_id, count(*) as unread_count
        from app_public.messages
       where receiver_id = ${me} and read = false
       group by sender_id
    )
    select ${messageColumns},
           u.id as "partnerId", u.username as "partnerUsername",
           u.display_name as "partnerDisplayName", u.created_at as "partnerCreatedAt",
           coalesce(unread.unread_count, 0) as "unreadCount"
      from latest m
      join app_public.users u on u.id = m.partner_id
      left join unread on unread.partner_id = m.partner_id
     where true ${beforeCursor(sql.identifier(['m', 'id']), page.before)}
     order by m.id desc
     limit ${page.limit + 1}
  `);
  const { items, nextCursor } = paginate(rows, page.limit);
  return {
    conversations: items.map(({ partnerId, partnerUsername, partnerDisplayName, partnerCreatedAt, unreadCount, ...lastMessage }) => ({
      user: { id: partnerId, username: partnerUsername, displayName: partnerDisplayName, createdAt: partnerCreatedAt },
      lastMessage,
      unreadCount,
    })),
    nextCursor,
  };
}

const pageText = z.object({ page: z.string().nullable() });

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
  return connection.oneFirst(sql.type(pageText)`
    select app_public.conversation_page(${caller.role}, ${caller.id}, ${other}, ${page.before ?? null}, ${page.limit}) as page
  `);
}

const markedRow = z.object({ marked: z.number() });

/**
 * Marks every unread message from `other` to the caller read, in one
 * statement over the partial unread index; how many, or null when that user
 * does not exist.
 */
export async function markConversationRead(connection: CommonQueryMethods, me: number, other: number): Promise<number | null> {
  return connection.maybeOneFirst(sql.type(markedRow)`
    with marked as (
      update app_public.messages set read = true
       where receiver_id = ${me} and sender_id = ${other} and read = false
      returning 1
    )
    select (select count(*) from marked) as marked from app_public.users where id = ${other}
  `);
}
