import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Caller } from '../db/transaction';
import { oneStatementView } from './views';
import { countHead, idRow } from './schemas';
import { beforeCursor, headedPage, nullableColumns, paginate, type Page } from './pages';

export const notificationRow = z.object({
  id: z.number().int(),
  kind: z.enum(['message', 'reply']),
  messageId: z.number().int(),
  senderId: z.number().int(),
  /** The group of a group message's notification; null for a direct one. */
  groupId: z.number().int().nullable(),
  preview: z.string(),
  createdAt: z.string(),
  readAt: z.string().nullable(),
});
export type Notification = z.infer<typeof notificationRow>;

const notificationColumns = sql.fragment`
  n.id, n.kind, n.message_id as "messageId", m.sender_id as "senderId", m.group_id as "groupId",
  coalesce(left(m.content, 200), '') as preview, n.created_at as "createdAt", n.read_at as "readAt"`;

/**
 * A page of the caller's notifications, newest first, with the unread
 * count, as the API's JSON text: app_public.notifications_page (migration
 * 000023), one statement (queries/views.ts).
 */
export async function getNotificationsJson(connection: CommonQueryMethods, caller: Caller, page: Page & { unreadOnly: boolean }): Promise<string> {
  const view = await oneStatementView(connection, caller,
    sql.fragment`app_public.notifications_page(${caller.role}, ${caller.id}, ${page.unreadOnly}, ${page.before ?? null}, ${page.limit})`);
  if (view === null) throw new Error('notifications_page answered nothing');
  return view;
}

/** The event types of the live stream (migration 000010 for the message.* ones). */
export const STREAM_EVENT_TYPES = ['notification', 'message.created', 'message.edited', 'message.read', 'message.deleted', 'account.deleted'] as const;
export type StreamEventType = (typeof STREAM_EVENT_TYPES)[number];

/**
 * One event of the live stream: its delivery cursor, its type and its data
 * as JSON text; `data` is null for an event whose messages have all been
 * deleted since (the cursor moves past it, nothing is sent).
 */
export type StreamEvent = { seq: number; type: StreamEventType; data: string | null };

const streamEventRow = nullableColumns(notificationRow).extend({
  seq: z.number().int(),
  type: z.enum(STREAM_EVENT_TYPES),
  data: z.string().nullable(),
});

/**
 * The user's stream events with seq above `afterSeq`, in seq order: the live
 * stream's catch-up. Notifications and live conversation events share one
 * seq per user, taken in commit order under the user's counter lock (see
 * the triggers), so this cannot skip one that commits late. A notification
 * is sent as its notification JSON with its seq; an event as its data.
 */
export async function streamEventsAfter(
  connection: CommonQueryMethods,
  me: number,
  afterSeq: number,
  limit: number,
): Promise<StreamEvent[]> {
  const rows = await connection.any(sql.type(streamEventRow)`
    (select ${notificationColumns}, n.seq, 'notification' as type, null::text as data
       from app_public.notifications n
       join app_public.messages m on m.id = n.message_id
      where n.user_id = ${me} and n.seq > ${afterSeq}
      order by n.seq
      limit ${limit})
    union all
    (select null, null, null, null, null, null, null, null, e.seq, e.type,
            case when e.type = 'account.deleted' then json_build_object('userId', e.account_id)::text else (
            -- Built now from the messages that still exist: an event keeps
            -- ids, never content, so a deleted message is never replayed.
            select case when count(m.id) > 0 or e.message_count > cardinality(e.message_ids) then
                     json_build_object('count', e.message_count, 'messages', coalesce(json_agg(
                       case when e.type = 'message.read' then app_public.read_receipt_json(m)
                            else app_public.message_json(m) end order by m.id), '[]'))::text end
              from app_public.messages m
             where m.id = any(e.message_ids)) end
       from app_public.live_events e
      where e.user_id = ${me} and e.seq > ${afterSeq}
      order by e.seq
      limit ${limit})
    order by seq
    limit ${limit}
  `);
  return rows.map(({ seq, type, data, ...n }) => ({
    seq,
    type,
    data: type === 'notification' ? JSON.stringify({ ...n, seq }) : data,
  }));
}

/** Marks one of the caller's notifications read (idempotent); false if it is not theirs. */
export async function markNotificationRead(connection: CommonQueryMethods, me: number, id: number): Promise<boolean> {
  const row = await connection.maybeOne(sql.type(idRow)`
    update app_public.notifications set read_at = coalesce(read_at, now())
     where id = ${id} and user_id = ${me}
    returning id
  `);
  return row !== null;
}

export async function markAllNotificationsRead(connection: CommonQueryMethods, me: number): Promise<number> {
  const result = await connection.query(sql.unsafe`
    update app_public.notifications set read_at = now() where user_id = ${me} and read_at is null
  `);
  return result.rowCount;
}

const cursorRow = z.object({ latest: z.number(), legacy: z.number().nullable(), horizon: z.number() });

/**
 * Where a stream starts: the caller's newest committed seq, notifications
 * and live events alike (0 when none; one still being written is above it,
 * so it is not skipped); for a client that still holds a notification id
 * from before the seq cursor (`legacyId`), the seq of that notification
 * (null when it is not theirs or is gone); and the caller's stream horizon,
 * the highest seq the retention job has pruned (a cursor below it cannot
 * be replayed whole). One query.
 */
export async function streamStart(
  connection: CommonQueryMethods,
  me: number,
  legacyId: number | null,
): Promise<{ latest: number; legacy: number | null; horizon: number }> {
  return connection.one(sql.type(cursorRow)`
    select greatest((select max(seq) from app_public.notifications where user_id = ${me}),
                    (select max(seq) from app_public.live_events where user_id = ${me}), 0) as latest,
           (select seq from app_public.notifications where id = ${legacyId}::bigint and user_id = ${me}) as legacy,
           app_public.stream_horizon() as horizon
  `);
}
