import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { countHead, idRow } from './schemas';
import { beforeCursor, headedPage, paginate, type Page } from './pages';

export const notificationRow = z.object({
  id: z.number().int(),
  kind: z.enum(['message', 'reply']),
  messageId: z.number().int(),
  senderId: z.number().int(),
  preview: z.string(),
  createdAt: z.string(),
  readAt: z.string().nullable(),
});
export type Notification = z.infer<typeof notificationRow>;

const notificationColumns = sql.fragment`
  n.id, n.kind, n.message_id as "messageId", m.sender_id as "senderId",
  left(m.content, 200) as preview, n.created_at as "createdAt", n.read_at as "readAt"`;

/** A page of the caller's notifications, newest first, with the unread count. */
export async function listNotifications(
  connection: CommonQueryMethods,
  me: number,
  page: Page & { unreadOnly: boolean },
): Promise<{ notifications: Notification[]; unreadCount: number; nextCursor: number | null }> {
  const result = await headedPage(connection, {
    head: sql.fragment`select count(*) as head from app_public.notifications where user_id = ${me} and read_at is null`,
    headSchema: countHead,
    row: notificationRow,
    page: sql.fragment`
      select ${notificationColumns}
        from app_public.notifications n
        join app_public.messages m on m.id = n.message_id
       where n.user_id = ${me}
             ${page.unreadOnly ? sql.fragment`and n.read_at is null` : sql.fragment``}
             ${beforeCursor(sql.identifier(['n', 'id']), page.before)}
       order by n.id desc
       limit ${page.limit + 1}`,
  });
  const { items, nextCursor } = paginate(result?.rows ?? [], page.limit);
  return { notifications: items, unreadCount: result?.head ?? 0, nextCursor };
}

/** A notification as the live stream sends it: with its delivery cursor. */
export const streamNotificationRow = notificationRow.extend({ seq: z.number().int() });
export type StreamNotification = z.infer<typeof streamNotificationRow>;

/**
 * The user's notifications with seq above `afterSeq`, in seq order: the live
 * stream's catch-up. seq is taken in commit order per receiver (see the
 * notification trigger), so this cannot skip one that commits late.
 */
export async function notificationsAfter(
  connection: CommonQueryMethods,
  me: number,
  afterSeq: number,
  limit: number,
): Promise<readonly StreamNotification[]> {
  return connection.any(sql.type(streamNotificationRow)`
    select ${notificationColumns}, n.seq
      from app_public.notifications n
      join app_public.messages m on m.id = n.message_id
     where n.user_id = ${me} and n.seq > ${afterSeq}
     order by n.seq
     limit ${limit}
  `);
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

const cursorRow = z.object({ latest: z.number(), legacy: z.number().nullable() });

/**
 * Where a stream starts: the caller's newest committed seq (0 when none;
 * one still being written is above it, so it is not skipped), and, for a
 * client that still holds a notification id from before the seq cursor
 * (`legacyId`), the seq of that notification (null when it is not theirs or
 * is gone). One query either way.
 */
export async function streamStart(
  connection: CommonQueryMethods,
  me: number,
  legacyId: number | null,
): Promise<{ latest: number; legacy: number | null }> {
  return connection.one(sql.type(cursorRow)`
    select coalesce((select max(seq) from app_public.notifications where user_id = ${me}), 0) as latest,
           (select seq from app_public.notifications where id = ${legacyId}::bigint and user_id = ${me}) as legacy
  `);
}
