import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { forbidden, notFound } from '../errors';
import { beforeCursor, countHead, existsRow, headedPage, idRow, messageRow, paginate, type Message, type Page } from './schemas';

/**
 * Every query scopes by the caller explicitly (`me`) as well as through
 * row-level security: the policies are the second wall, not the only one.
 */

export const messageColumns = sql.fragment`
  m.id, m.sender_id as "senderId", m.receiver_id as "receiverId",
  m.parent_message_id as "parentMessageId", m.content, m.sent_at as "sentAt",
  m.edited, m.edited_at as "editedAt", m.read, m.read_at as "readAt",
  m.reply_count as "replyCount"`;

const visibleTo = (me: number) => sql.fragment`(m.sender_id = ${me} or m.receiver_id = ${me})`;

/**
 * Sends a message, or a reply when parentMessageId is given (the receiver
 * then defaults to the parent's other participant, in a trigger). Returns
 * null when the parent is not visible to the sender.
 */
export async function sendMessage(
  connection: CommonQueryMethods,
  me: number,
  input: { receiverId?: number | undefined; parentMessageId?: number | undefined; content: string },
): Promise<Message | null> {
  const parentId = input.parentMessageId ?? null;
  return connection.maybeOne(sql.type(messageRow)`
    with m as (
      insert into app_public.messages (sender_id, receiver_id, parent_message_id, content)
      select ${me}, ${input.receiverId ?? null}::bigint, ${parentId}::bigint, ${input.content}
       where ${parentId}::bigint is null
          or exists (select 1 from app_public.messages m
                      where m.id = ${parentId}::bigint and ${visibleTo(me)})
      returning *
    )
    select ${messageColumns} from m
  `);
}

export async function getMessage(connection: CommonQueryMethods, me: number, id: number): Promise<Message | null> {
  return connection.maybeOne(sql.type(messageRow)`
    select ${messageColumns} from app_public.messages m where m.id = ${id} and ${visibleTo(me)}
  `);
}

/** After a scoped UPDATE matched nothing: 404 if the caller cannot see it, else 403. */
async function explainRefusal(connection: CommonQueryMethods, me: number, id: number, why: string): Promise<never> {
  const visible = await connection.exists(sql.type(existsRow)`
    select 1 from app_public.messages m where m.id = ${id} and ${visibleTo(me)}
  `);
  throw visible ? forbidden(why) : notFound('message');
}

/** The sender edits; the BEFORE UPDATE trigger keeps the old version. */
export async function editMessage(connection: CommonQueryMethods, me: number, id: number, content: string): Promise<Message> {
  const edited = await connection.maybeOne(sql.type(messageRow)`
    update app_public.messages m set content = ${content}
     where m.id = ${id} and m.sender_id = ${me}
    returning ${messageColumns}
  `);
  return edited ?? explainRefusal(connection, me, id, 'only the sender may edit a message');
}

/** The receiver marks it read (idempotent); returns the conversation's participants. */
export async function markMessageRead(connection: CommonQueryMethods, me: number, id: number): Promise<readonly number[]> {
  const row = await connection.maybeOne(sql.type(participantsRow)`
    update app_public.messages m set read = true
     where m.id = ${id} and m.receiver_id = ${me}
    returning m.sender_id as "senderId", m.receiver_id as "receiverId"
  `);
  if (!row) return explainRefusal(connection, me, id, 'only the receiver may mark a message read');
  return [row.senderId, row.receiverId];
}

const participantsRow = z.object({ senderId: z.number(), receiverId: z.number() });

export const historyVersion = z.object({
  oldContent: z.string(),
  editedAt: z.string(),
  editedBy: z.number().int().nullable(),
});

/** Every earlier version, newest first; null when the message is not visible. One query. */
export async function getHistory(
  connection: CommonQueryMethods,
  me: number,
  id: number,
): Promise<z.infer<typeof historyVersion>[] | null> {
  const result = await headedPage(connection, {
    head: sql.fragment`select m.id as head from app_public.messages m where m.id = ${id} and ${visibleTo(me)}`,
    headSchema: idRow.shape.id,
    row: historyVersion,
    page: sql.fragment`
      select h.old_content as "oldContent", h.edited_at as "editedAt", h.edited_by as "editedBy"
        from app_public.message_history h
       where h.message_id = head_row.head
       order by h.id desc`,
  });
  return result ? result.rows : null;
}

export const threadRow = messageRow.extend({ depth: z.number().int() });
export type ThreadRow = z.infer<typeof threadRow>;

/** Deepest thread the query will walk; the schema caps depth at the same value. */
export const MAX_THREAD_DEPTH = 1000;

/**
 * The whole thread containing message `id`, in ONE query: the root comes
 * from thread_root_id, and a recursive CTE walks down level by level through
 * the (parent_message_id, id) index. Rows come back by depth, then id, so
 * every parent precedes its replies and siblings are in sending order.
 *
 * Cycle-safe by construction and by bound: parent_message_id is immutable
 * and must reference an earlier row, and the walk stops at depth 1000 (the
 * schema's own limit). No SEARCH/CYCLE path arrays: they copy the whole path
 * into every row, which made a 1,000-deep chain quadratic (246 ms against
 * a few ms without them, bench/REPORT.md).
 */
export async function getThread(connection: CommonQueryMethods, me: number, id: number): Promise<readonly ThreadRow[]> {
  return connection.any(sql.type(threadRow)`
    with recursive thread as (
      select ${messageColumns}, 0 as depth
        from app_public.messages m
       where m.id = (select t.thread_root_id from app_public.messages t where t.id = ${id})
         and ${visibleTo(me)}
      union all
      select ${messageColumns}, thread.depth + 1
        from thread
        join app_public.messages m on m.parent_message_id = thread.id
       where thread.depth < ${MAX_THREAD_DEPTH}
    )
    select * from thread order by depth, id
  `);
}

export type ThreadNode = ThreadRow & { replies: ThreadNode[] };

/** Nests the rows of getThread() (parents before replies, by id) into a tree. */
export function buildTree(rows: readonly ThreadRow[]): ThreadNode | null {
  const byId = new Map<number, ThreadNode>();
  let root: ThreadNode | null = null;
  for (const row of rows) {
    const node: ThreadNode = { ...row, replies: [] };
    byId.set(row.id, node);
    const parent = row.parentMessageId === null ? undefined : byId.get(row.parentMessageId);
    if (parent) parent.replies.push(node);
    else root ??= node;
  }
  return root;
}

export const inboxRow = z.object({
  id: z.number().int(),
  senderId: z.number().int(),
  senderUsername: z.string(),
  parentMessageId: z.number().int().nullable(),
  preview: z.string(),
  sentAt: z.string(),
});

/**
 * The unread inbox in one query over messages_unread_inbox_idx. The literal
 * `read = false` (never a bound parameter) lets the planner match the
 * partial index; only the columns the view shows are read, and the unread
 * count rides along in the same statement.
 */
export async function getUnreadInbox(
  connection: CommonQueryMethods,
  me: number,
  page: Page,
): Promise<{ unreadCount: number; messages: z.infer<typeof inboxRow>[]; nextCursor: number | null }> {
  const result = await headedPage(connection, {
    head: sql.fragment`select count(*) as head from app_public.messages where receiver_id = ${me} and read = false`,
    headSchema: countHead,
    row: inboxRow,
    page: sql.fragment`
      select m.id, m.sender_id as "senderId", u.username as "senderUsername",
             m.parent_message_id as "parentMessageId", left(m.content, 200) as preview,
             m.sent_at as "sentAt"
        from app_public.messages m
        join app_public.users u on u.id = m.sender_id
       where m.receiver_id = ${me} and m.read = false
             ${beforeCursor(sql.identifier(['m', 'id']), page.before)}
       order by m.id desc
       limit ${page.limit + 1}`,
  });
  const { items, nextCursor } = paginate(result?.rows ?? [], page.limit);
  return { unreadCount: result?.head ?? 0, messages: items, nextCursor };
}
