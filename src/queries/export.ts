import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * GET /me/export: everything of the caller's, as NDJSON lines built by
 * PostgreSQL, read through server-side cursors FETCHed a page at a time, so
 * that 100,000 messages never sit in the service's memory at once. Run it
 * in one REPEATABLE READ, READ ONLY transaction as the caller (asUser with
 * `snapshot`): every line comes from one snapshot, and row-level security
 * decides what is the caller's exactly as for every other view.
 *
 * Lines, in this order (each `{"type": …, …}`): `account`, `user` (each
 * person the caller has a direct conversation with, and the senders of the
 * group messages they saw), `membership` (each period in a group, with the
 * group's title while the caller is in it), `message` (every message sent
 * or received, and the group messages of their periods as they read them
 * now, the API's shape, oldest first), `history` (earlier
 * versions of the caller's own messages), `notification`, `report` (the reports the caller filed: reason and status, not the reported words), `block`, and
 * last `end` with the counts: a file without it was cut short.
 */

const lineRow = z.object({ line: z.string() });
/** Rows per FETCH (written into the statement: FETCH takes no parameter). */
const EXPORT_PAGE = 1000;

/** What each cursor reads: its name and the query, each row one line of text. */
function sections(me: number) {
  return [
    {
      name: 'export_users',
      query: sql.fragment`
        select json_build_object('type', 'user', 'user', json_build_object(
                 'id', u.id, 'username', u.username, 'displayName', u.display_name))::text as line
          from app_public.users u
         where u.id in (select app_public.other_participant(m.sender_id, m.receiver_id, ${me})
                          from app_public.messages m
                         where m.group_id is null and (m.sender_id = ${me} or m.receiver_id = ${me})
                        union
                        select m.sender_id from app_public.messages m
                         where m.group_id in (select p.conversation_id from app_public.conversation_members p where p.user_id = ${me}))
         order by u.id`,
    },
    {
      name: 'export_memberships',
      query: sql.fragment`
        select json_build_object('type', 'membership', 'membership', json_build_object(
                 'groupId', p.conversation_id, 'title', c.title, 'role', p.role,
                 'joinedAt', app_public.api_time(p.joined_at), 'leftAt', app_public.api_time(p.left_at),
                 'readPosition', greatest(p.read_seq, p.joined_seq)))::text as line
          from app_public.conversation_members p
          left join app_public.conversations c on c.id = p.conversation_id
         where p.user_id = ${me}
         order by p.id`,
    },
    {
      name: 'export_messages',
      query: sql.fragment`
        select json_build_object('type', 'message', 'message', app_public.message_json(m))::text as line
          from app_public.messages m
         where m.sender_id = ${me} or m.receiver_id = ${me}
            or m.group_id in (select p.conversation_id from app_public.conversation_members p where p.user_id = ${me})
         order by m.id`,
    },
    {
      name: 'export_history',
      query: sql.fragment`
        select json_build_object('type', 'history', 'version', json_build_object(
                 'messageId', h.message_id, 'oldContent', h.old_content,
                 'editedAt', app_public.api_time(h.edited_at)))::text as line
          from app_public.message_history h
          join app_public.messages m on m.id = h.message_id
         where m.sender_id = ${me}
         order by h.message_id, h.id`,
    },
    {
      name: 'export_notifications',
      query: sql.fragment`
        select json_build_object('type', 'notification', 'notification', json_build_object(
                 'id', n.id, 'kind', n.kind, 'messageId', n.message_id,
                 'createdAt', app_public.api_time(n.created_at), 'readAt', app_public.api_time(n.read_at)))::text as line
          from app_public.notifications n
         where n.user_id = ${me}
         order by n.id`,
    },
    {
      name: 'export_reports',
      query: sql.fragment`
        select json_build_object('type', 'report', 'report', json_build_object(
                 'id', r.id, 'messageId', r.message_id, 'reason', r.reason, 'status', r.status,
                 'createdAt', app_public.api_time(r.created_at), 'resolvedAt', app_public.api_time(r.resolved_at)))::text as line
          from app_public.reports r
         where r.reporter_id = ${me}
         order by r.id`,
    },
    {
      name: 'export_blocks',
      query: sql.fragment`
        select json_build_object('type', 'block', 'block', json_build_object(
                 'userId', b.blocked_id, 'blockedAt', app_public.api_time(b.created_at)))::text as line
          from app_public.blocks b
         where b.blocker_id = ${me}
         order by b.created_at, b.blocked_id`,
    },
  ] as const;
}

/**
 * The export's lines for `me`, EXPORT_PAGE rows per FETCH, each chunk one
 * FETCH's lines joined (newline-terminated). The caller runs it inside the
 * snapshot transaction and stops pulling when the client is gone.
 */
export async function* exportChunks(tx: CommonQueryMethods, me: number): AsyncGenerator<string> {
  const account = await tx.maybeOneFirst(sql.type(lineRow)`
    select json_build_object('type', 'account', 'exportedAt', app_public.api_time(clock_timestamp()),
             'account', json_build_object('id', u.id, 'username', u.username, 'displayName', u.display_name,
                                          'createdAt', app_public.api_time(u.created_at)))::text as line
      from app_public.users u where u.id = ${me}
  `);
  if (account === null) return;
  yield `${account}\n`;
  const counts: Record<string, number> = {};
  for (const { name, query } of sections(me)) {
    // A cursor per section: one plan, one pass over the rows, fetched a
    // page at a time (the names are constants, never input).
    await tx.query(sql.unsafe`declare ${sql.identifier([name])} no scroll cursor for ${query}`);
    let total = 0;
    for (;;) {
      // FETCH takes no parameter: the page size is part of the statement.
      const lines = await tx.anyFirst(sql.type(lineRow)`fetch forward 1000 from ${sql.identifier([name])}`);
      if (lines.length === 0) break;
      total += lines.length;
      yield `${lines.join('\n')}\n`;
      if (lines.length < EXPORT_PAGE) break;
    }
    await tx.query(sql.unsafe`close ${sql.identifier([name])}`);
    counts[name.replace('export_', '')] = total;
  }
  yield `${JSON.stringify({ type: 'end', counts })}\n`;
}
