import { sql, type CommonQueryMethods } from 'slonik';
import type { Caller } from '../db/transaction';
import { z } from 'zod';
import { messageColumns } from './messages';
import { messageRow, userRow } from './schemas';
import { beforeCursor, paginate, type Page } from './pages';

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

const flatConversationRow = messageRow.extend({
  kind: z.enum(['direct', 'group']),
  conversationId: z.number(),
  title: z.string().nullable(),
  partnerId: z.number().nullable(),
  partnerUsername: z.string().nullable(),
  partnerDisplayName: z.string().nullable(),
  partnerCreatedAt: z.string().nullable(),
  unreadCount: z.number(),
});

/**
 * The caller's conversations, direct and group together, most recent
 * first: one entry per conversation row the caller is in (their direct
 * pairs by the pair indexes, their current groups by their memberships),
 * each with its newest message the caller sees (one backward step of the
 * conversation or group index) and the unread count (direct: from the
 * partial unread index, once for all partners; group: past the read
 * position). It costs the number of conversations, not of messages.
 * Paginated by the last message's id.
 */
export async function listConversations(
  connection: CommonQueryMethods,
  me: number,
  page: Page,
): Promise<{ conversations: Conversation[]; nextCursor: number | null }> {
  const rows = await connection.any(sql.type(flatConversationRow)`
    with mine as (
      select c.id, c.kind, c.title, c.user_high as partner_id, 0::bigint as joined_seq
        from app_public.conversations c where c.kind = 'direct' and c.user_low = ${me}
      union all
      select c.id, c.kind, c.title, c.user_low, 0
        from app_public.conversations c where c.kind = 'direct' and c.user_high = ${me} and c.user_low <> ${me}
      union all
      select c.id, c.kind, c.title, null, p.joined_seq
        from app_public.conversation_members p
        join app_public.conversations c on c.id = p.conversation_id
       where p.user_id = ${me} and p.left_seq is null
    ), unread as (
      select sender_id as partner_id, count(*) as unread_count
        from app_public.messages
       where receiver_id = ${me} and read = false
       group by sender_id
    ), latest as (
      select mine.*, last.id as last_id
        from mine
        cross join lateral (
          (select m.id from app_public.messages m
            where mine.kind = 'direct' and m.group_id is null
              and m.user_low = least(${me}::bigint, mine.partner_id) and m.user_high = greatest(${me}::bigint, mine.partner_id)
            order by m.user_low desc, m.user_high desc, m.id desc limit 1)
          union all
          (select m.id from app_public.messages m
            where mine.kind = 'group' and m.group_id = mine.id and m.group_seq > mine.joined_seq
            order by m.group_id desc, m.group_seq desc limit 1)
        ) last
       where true ${beforeCursor(sql.identifier(['last', 'id']), page.before)}
       order by last.id desc
       limit ${page.limit + 1}
    )
    select ${messageColumns}, l.kind, l.id as "conversationId", l.title,
           u.id as "partnerId", u.username as "partnerUsername",
           u.display_name as "partnerDisplayName", u.created_at as "partnerCreatedAt",
           case when l.kind = 'group' then app_public.group_unread_count(l.id)
                else coalesce(unread.unread_count, 0) end as "unreadCount"
      from latest l
      join app_public.messages m on m.id = l.last_id
      left join app_public.users u on u.id = l.partner_id
      left join unread on unread.partner_id = l.partner_id and l.kind = 'direct'
     order by m.id desc
  `);
  const { items, nextCursor } = paginate(rows, page.limit);
  return {
    conversations: items.map(
      ({ kind, conversationId, title, partnerId, partnerUsername, partnerDisplayName, partnerCreatedAt, unreadCount, ...lastMessage }) => ({
        kind,
        user:
          kind === 'direct' && partnerId !== null
            ? { id: partnerId, username: partnerUsername!, displayName: partnerDisplayName, createdAt: partnerCreatedAt! }
            : null,
        group: kind === 'group' ? { id: conversationId, title: title! } : null,
        lastMessage,
        unreadCount,
      }),
    ),
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
