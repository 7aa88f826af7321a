import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Caller } from '../db/transaction';
import { visibleTo } from './participants';
import { oneStatementView } from './views';
import { countHead, existsRow, idRow, messageRow, type Message } from './schemas';
import { beforeCursor, headedPage, nullableColumns, paginate, type Page } from './pages';

/**
 * Every query scopes by the caller explicitly (`me`) as well as through
 * row-level security: the policies are the second wall, not the only one.
 */

export const messageColumns = sql.fragment`
  m.id, m.sender_id as "senderId", m.receiver_id as "receiverId",
  m.group_id as "groupId", m.parent_message_id as "parentMessageId", m.content, m.sent_at as "sentAt",
  m.edited, m.edited_at as "editedAt", m.read, m.read_at as "readAt",
  m.reply_count as "replyCount", m.deleted_at as "deletedAt"`;


export type SendInput = {
  receiverId?: number | undefined;
  groupId?: number | undefined;
  parentMessageId?: number | undefined;
  content: string;
};

/** An Idempotency-Key and the hash of the request it came with. */
export type Idempotency = { key: string; requestHash: Buffer };

const sentRow = messageRow.extend({ claimed: z.boolean() });

/** What an earlier send with the same Idempotency-Key produced. */
export type Replay = { replay: Message; requestHash: Buffer };

/**
 * Sends a message to a receiver or a group, or a reply when
 * parentMessageId is given (its conversation then defaults to the parent's,
 * in a trigger). Returns
 * null when the parent is not visible to the sender.
 *
 * With `once`, a key this sender used within 24 h answers with what it
 * produced (a lookup by primary key, nothing written). Otherwise the key is
 * claimed in the same statement as the insert (a key older than 24 h may be
 * claimed again). 'key-taken' means a concurrent send with the same key
 * committed first (this one waited on the key's index entry): the caller
 * must roll this transaction back, so the message does not stay, and try
 * again, which then replays that send.
 */
export async function sendMessage(connection: CommonQueryMethods, me: number, input: SendInput): Promise<Message | null>;
export async function sendMessage(
  connection: CommonQueryMethods,
  me: number,
  input: SendInput,
  once: Idempotency | undefined,
): Promise<Message | Replay | 'key-taken' | null>;
export async function sendMessage(
  connection: CommonQueryMethods,
  me: number,
  input: SendInput,
  once?: Idempotency,
): Promise<Message | Replay | 'key-taken' | null> {
  if (once) {
    const prior = await findIdempotentSend(connection, me, once.key);
    if (prior) return prior;
  }
  const parentId = input.parentMessageId ?? null;
  const row = await connection.maybeOne(sql.type(sentRow)`
    with m as (
      insert into app_public.messages (sender_id, receiver_id, group_id, parent_message_id, content)
      select ${me}, ${input.receiverId ?? null}::bigint, ${input.groupId ?? null}::bigint, ${parentId}::bigint, ${input.content}
       where ${parentId}::bigint is null
          or exists (select 1 from app_public.messages m
                      where m.id = ${parentId}::bigint and ${visibleTo(me)})
      returning *
    ), claim as (
      insert into app_public.idempotency_keys (sender_id, key, request_hash, message_id)
      select ${me}, ${once?.key ?? null}::text, ${once ? sql.binary(once.requestHash) : null}, m.id
        from m where ${once?.key ?? null}::text is not null
      on conflict (sender_id, key) do update
        set request_hash = excluded.request_hash, message_id = excluded.message_id, created_at = now()
        where idempotency_keys.created_at < now() - interval '24 hours'
      returning 1
    )
    select ${messageColumns}, (${once === undefined} or exists (select 1 from claim)) as claimed from m
  `);
  if (!row) return null;
  const { claimed, ...message } = row;
  return claimed ? message : 'key-taken';
}

const replayRow = messageRow.extend({ requestHash: z.instanceof(Buffer) });

/** The message an Idempotency-Key of the caller produced (within 24 h), with its request hash; null if none. */
async function findIdempotentSend(connection: CommonQueryMethods, me: number, key: string): Promise<Replay | null> {
  const row = await connection.maybeOne(sql.type(replayRow)`
    select ${messageColumns}, k.request_hash as "requestHash"
      from app_public.idempotency_keys k
      join app_public.messages m on m.id = k.message_id
     where k.sender_id = ${me} and k.key = ${key} and k.created_at >= now() - interval '24 hours'
  `);
  if (!row) return null;
  const { requestHash, ...message } = row;
  return { replay: message, requestHash };
}

/** GET /messages/:id: the message as JSON text (one statement, queries/views.ts), or null when the caller cannot read it. */
export function getMessageJson(connection: CommonQueryMethods, caller: Caller, id: number): Promise<string | null> {
  return oneStatementView(connection, caller, sql.fragment`app_public.message_view(${caller.role}, ${caller.id}, ${id})`);
}

/** Why a scoped UPDATE matched nothing: the caller cannot see the message, or may not change it. */
export type Refusal = 'not-found' | 'forbidden';

async function refusal(connection: CommonQueryMethods, me: number, id: number): Promise<Refusal> {
  const visible = await connection.exists(sql.type(existsRow)`
    select 1 from app_public.messages m where m.id = ${id} and ${visibleTo(me)}
  `);
  return visible ? 'forbidden' : 'not-found';
}

/** The sender edits; the BEFORE UPDATE trigger keeps the old version. */
export async function editMessage(
  connection: CommonQueryMethods,
  me: number,
  id: number,
  content: string,
): Promise<Message | Refusal> {
  const edited = await connection.maybeOne(sql.type(messageRow)`
    update app_public.messages m set content = ${content}
     where m.id = ${id} and m.sender_id = ${me}
    returning ${messageColumns}
  `);
  return edited ?? refusal(connection, me, id);
}

const goneRow = z.object({ gone: z.boolean() });

/**
 * Unsend: the sender (or a moderator) makes the message a tombstone; the
 * triggers blank its content and delete every copy of it (migration
 * 000021). An unsent message answers 'deleted' again (idempotent); a
 * reader who may not unsend it gets 'forbidden' from the trigger (SB003,
 * thrown), one who cannot see it 'not-found'.
 */
export async function unsendMessage(connection: CommonQueryMethods, me: number, id: number): Promise<'deleted' | 'not-found'> {
  const row = await connection.maybeOne(sql.type(goneRow)`
    with unsent as (
      update app_public.messages m set deleted_at = now()
       where m.id = ${id} and m.deleted_at is null
      returning 1
    )
    select exists (select from unsent) or m.deleted_at is not null as gone
      from app_public.messages m where m.id = ${id} and ${visibleTo(me)}
  `);
  return row?.gone ? 'deleted' : 'not-found';
}

/** The receiver marks it read (idempotent). */
export async function markMessageRead(connection: CommonQueryMethods, me: number, id: number): Promise<'read' | Refusal> {
  const row = await connection.maybeOne(sql.type(idRow)`
    update app_public.messages m set read = true
     where m.id = ${id} and m.receiver_id = ${me}
    returning m.id
  `);
  return row ? 'read' : refusal(connection, me, id);
}

export const historyVersion = z.object({
  oldContent: z.string(),
  editedAt: z.string(),
  editedBy: z.number().int().nullable(),
});

/** GET /messages/:id/history: {messageId, versions} (newest first) as JSON text; null when the message is not visible. */
export function getHistoryJson(connection: CommonQueryMethods, caller: Caller, id: number): Promise<string | null> {
  return oneStatementView(connection, caller, sql.fragment`app_public.history_view(${caller.role}, ${caller.id}, ${id})`);
}

export const threadRow = messageRow.extend({ depth: z.number().int() });
export type ThreadRow = z.infer<typeof threadRow>;

/**
 * A message (messageRow's shape) as JSON text built by PostgreSQL:
 * app_public.message_json (migration 000012), the same function the live
 * events use, inlined into the query. Pages of messages travel as one
 * string per message, which Node joins and passes through, instead of
 * decoding eleven columns per message, building objects and serialising
 * them again: that was most of a thread request's CPU in Node.
 * test/shapes.test.ts holds it equal to the decoded row.
 */
export const messageJson = sql.fragment`app_public.message_json(m)::text`;

/** One node of a thread page: where it belongs, its depth, and its message JSON (messageRow's shape). */
export type ThreadPiece = { id: number; parentMessageId: number | null; depth: number; node: string };
const threadPiece = z.object({ id: z.number().int(), parentMessageId: z.number().int().nullable(), depth: z.number().int(), node: z.string() });

/** Deepest thread the query will walk; the schema caps depth at the same value. */
export const MAX_THREAD_DEPTH = 1000;

// Every node column is nullable: the head row of an empty page has none.
const threadPageRow = nullableColumns(threadPiece).extend({ rootId: z.number().int(), cursorOk: z.boolean() });

export type ThreadPage =
  | { outcome: 'not-found' }
  | { outcome: 'bad-cursor' }
  | { outcome: 'page'; rootId: number; rows: ThreadPiece[]; nextCursor: number | null };

/**
 * One page of the thread containing message `id`, in ONE query: nodes in
 * (depth, id) order — every parent before its replies, siblings in sending
 * order — starting after the node `after` (the previous page's nextCursor),
 * at most `limit` of them.
 *
 * A recursive CTE walks the thread level by level. thread_root_id and depth
 * are kept by the insert trigger, so each step takes the next level's ids
 * straight from messages_thread_position_idx (thread_root_id, depth, id),
 * and only as many as the page still needs: a page costs its own size and
 * the levels it spans, not the thread's size (the first page of a
 * 100,000-reply thread reads 201 index entries). No step joins a table
 * against a working set whose size the planner must guess, so there is no
 * plan that a stale estimate could turn into a scan of messages; the last
 * step fetches the page's rows by primary key.
 *
 * Two details keep every step an index range scan, whatever the
 * statistics say. Under row-level security only leakproof quals may run
 * before the policy's, so a qual like `m.depth = l.depth + 1` (int4pl is not
 * leakproof) is demoted to a filter over the whole thread (1,000 rows read
 * per level of a 1,000-deep chain): the next depth is computed in the select
 * list (`below`) and compared as a plain value. And `offset 0` keeps each
 * level's array subquery from being inlined twice.
 *
 * Cycle-safe by construction: depth only grows and stops at 1000 (the
 * schema's own limit). The head row (root id, cursor check) comes back even
 * when the page is empty; no row at all means the thread is not visible.
 */
export async function getThreadPage(
  connection: CommonQueryMethods,
  me: number,
  id: number,
  page: { limit: number; after?: number | undefined },
): Promise<ThreadPage> {
  const after = page.after ?? null;
  const budget = page.limit + 1; // one more than asked: is there a next page?
  const rows = await connection.any(sql.type(threadPageRow)`
    with recursive head as (
      select r.id as root_id,
             coalesce(c.depth, 0) as start_depth,
             coalesce(c.id, 0) as start_after,
             (${after}::bigint is null or c.id is not null) as cursor_ok
        from app_public.messages t
        join app_public.messages r on r.id = t.thread_root_id
        left join app_public.messages c on c.id = ${after}::bigint and c.thread_root_id = r.id
       where t.id = ${id} and ${visibleTo(me, 'r')}
    ),
    levels (depth, below, ids, taken) as (
      -- The rest of the cursor's level (the root's level on the first page).
      select h.start_depth, h.start_depth + 1, lvl.ids, cardinality(lvl.ids)
        from head h
        cross join lateral (select array(
          select m.id from app_public.messages m
           where m.thread_root_id = h.root_id and m.depth = h.start_depth and m.id > h.start_after
           order by m.id limit ${budget}) as ids offset 0) lvl
       where h.cursor_ok
      union all
      -- Then whole levels, each cut to what the page still needs. An empty
      -- level below the first ends the walk: nothing can be deeper.
      select l.below, l.below + 1, lvl.ids, l.taken + cardinality(lvl.ids)
        from levels l
        cross join head h
        cross join lateral (select array(
          select m.id from app_public.messages m
           where m.thread_root_id = h.root_id and m.depth = l.below
           order by m.id limit ${budget} - l.taken) as ids offset 0) lvl
       where l.taken < ${budget} and l.depth < ${MAX_THREAD_DEPTH}
         and (cardinality(l.ids) > 0 or l.depth = h.start_depth)
    )
    select h.root_id as "rootId", h.cursor_ok as "cursorOk", p.*
      from head h
      left join lateral (
        select m.id, m.parent_message_id as "parentMessageId", m.depth, ${messageJson} as node
          from app_public.messages m
         where m.id = any (array(select unnest(l.ids) from levels l))
         order by m.depth, m.id
      ) p on true
  `);
  const first = rows[0];
  if (!first) return { outcome: 'not-found' };
  if (!first.cursorOk) return { outcome: 'bad-cursor' };
  // The lateral side of an empty page is one row of NULLs.
  const nodes = rows.filter((r) => r.id !== null) as ThreadPiece[];
  const { items, nextCursor } = paginate(nodes, page.limit);
  return { outcome: 'page', rootId: first.rootId, rows: items, nextCursor };
}

export type ThreadNode = ThreadRow & { replies: ThreadNode[] };

/**
 * Nests a page of getThreadPage() nodes (parents before replies, siblings
 * by id) into trees, as JSON: each node under its parent when the parent is
 * on the same page, else at the top of the forest (its parent came on an
 * earlier page). Returns the top nodes, in order, each as a ThreadNode's
 * JSON. Iterative (a 1,000-deep chain nests 1,000 levels): the nodes are
 * visited deepest first, so every node's replies are complete strings
 * before the node itself is closed.
 */
export function forestJson(pieces: readonly ThreadPiece[]): { id: number; json: string }[] {
  const onPage = new Set(pieces.map((p) => p.id));
  const replies = new Map<number, string[]>();
  const tops: { id: number; json: string }[] = [];
  for (let i = pieces.length - 1; i >= 0; i--) {
    const { id, parentMessageId, depth, node } = pieces[i]!;
    const below = replies.get(id);
    // node is a JSON object: "…}" becomes "…,"depth":d,"replies":[…]}" (replies were collected last sibling first).
    const json = `${node.slice(0, -1)},"depth":${depth},"replies":[${below ? below.reverse().join(',') : ''}]}`;
    if (parentMessageId !== null && onPage.has(parentMessageId)) {
      const siblings = replies.get(parentMessageId);
      if (siblings) siblings.push(json);
      else replies.set(parentMessageId, [json]);
    } else {
      tops.push({ id, json });
    }
  }
  return tops.reverse();
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
 * GET /inbox/unread: {messages, unreadCount, nextCursor} as JSON text, from
 * messages_unread_inbox_idx (app_public.inbox_page: the literal
 * `read = false` matches the partial index; only the columns the view shows
 * are read, and the count rides in the same statement).
 */
export async function getUnreadInboxJson(connection: CommonQueryMethods, caller: Caller, page: Page): Promise<string> {
  const view = await oneStatementView(connection, caller,
    sql.fragment`app_public.inbox_page(${caller.role}, ${caller.id}, ${page.before ?? null}, ${page.limit})`);
  if (view === null) throw new Error('inbox_page answered nothing');
  return view;
}
