import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Caller } from '../db/transaction';
import { oneStatementView } from './views';

/**
 * Group conversations (migration 000020, docs/groups.md): a row of
 * app_public.conversations of kind 'group', members as periods in
 * app_public.conversation_members. The rules (who may send, who sees what,
 * who manages) are the database's; these queries add, read and end rows,
 * under row-level security as the caller.
 */

export const memberRow = z.object({
  userId: z.number().int(),
  username: z.string(),
  displayName: z.string().nullable(),
  role: z.enum(['owner', 'member']),
  joinedAt: z.string(),
});

export const groupRow = z.object({
  id: z.number().int(),
  kind: z.literal('group'),
  title: z.string(),
  createdAt: z.string(),
  /** Who manages the group now: its longest-standing owner, else its longest-standing member. */
  managerId: z.number().int().nullable(),
  members: z.array(memberRow),
  /** The caller's read position (a group position, as the page's cursors are). */
  readPosition: z.number().int(),
  /** The group's newest position. */
  lastPosition: z.number().int(),
});
export type Group = z.infer<typeof groupRow>;

const createdRow = z.object({ id: z.number().int() });

/** Creates a group with the caller as its owner and these members; its id. */
export async function createGroup(connection: CommonQueryMethods, title: string, memberIds: readonly number[]): Promise<number> {
  return connection.oneFirst(sql.type(createdRow)`
    select app_public.create_group(${title}, ${sql.array(memberIds, 'int8')}) as id
  `);
}

/**
 * The group with its current members (in joining order), as JSON built by
 * PostgreSQL; null unless the caller is a current member (row-level
 * security on conversations).
 */
export async function getGroup(connection: CommonQueryMethods, me: number, id: number): Promise<Group | null> {
  return connection.maybeOne(sql.type(groupRow)`
    select c.id, c.kind, c.title, app_public.api_time(c.created_at) as "createdAt",
           app_public.group_manager(c.id) as "managerId",
           (select coalesce(json_agg(json_build_object(
                     'userId', p.user_id, 'username', u.username, 'displayName', u.display_name,
                     'role', p.role, 'joinedAt', app_public.api_time(p.joined_at)) order by p.joined_seq, p.id), '[]')
              from app_public.conversation_members p
              join app_public.users u on u.id = p.user_id
             where p.conversation_id = c.id and p.left_seq is null) as members,
           (select greatest(p.read_seq, p.joined_seq) from app_public.conversation_members p
             where p.conversation_id = c.id and p.user_id = ${me} and p.left_seq is null) as "readPosition",
           c.last_seq as "lastPosition"
      from app_public.conversations c
     where c.id = ${id} and c.kind = 'group'
  `);
}

const changedRow = z.object({ changed: z.boolean() });

/** Renames the group; false unless the caller manages it (or it is not a group the caller sees). */
export async function renameGroup(connection: CommonQueryMethods, id: number, title: string): Promise<boolean> {
  return connection.oneFirst(sql.type(changedRow)`
    with renamed as (
      update app_public.conversations set title = ${title} where id = ${id} and kind = 'group' returning 1
    )
    select exists (select from renamed) as changed
  `);
}

/**
 * Adds a member (a current member already: nothing changes). When the
 * caller does not manage the group the policy's WITH CHECK refuses the row
 * (42501, a 403); the route checks first, to answer 404 or 403 precisely.
 */
export async function addMember(connection: CommonQueryMethods, groupId: number, userId: number): Promise<void> {
  await connection.query(sql.unsafe`
    insert into app_public.conversation_members (conversation_id, user_id)
    values (${groupId}, ${userId})
    on conflict (conversation_id, user_id) where left_seq is null do nothing
  `);
}

/** Whether the caller manages the group (is its owner, or its longest-standing member when no owner is left). */
export async function managesGroup(connection: CommonQueryMethods, me: number, groupId: number): Promise<boolean> {
  return connection.oneFirst(sql.type(changedRow)`
    select app_public.group_manager(${groupId}) is not distinct from ${me}::bigint as changed
  `);
}

/** Ends `userId`'s membership (leaving, or the manager removing them); false when there was none the caller may end. */
export async function endMembership(connection: CommonQueryMethods, groupId: number, userId: number): Promise<boolean> {
  return connection.oneFirst(sql.type(changedRow)`select app_public.leave_group(${groupId}, ${userId}) as changed`);
}

/**
 * Moves the caller's read position to the group's newest message (its
 * notifications up to there are read by the trigger _400_read_notifications);
 * false when the caller is not a member.
 */
export async function markGroupRead(connection: CommonQueryMethods, me: number, groupId: number): Promise<boolean> {
  return connection.oneFirst(sql.type(changedRow)`
    with marked as (
      update app_public.conversation_members p
         set read_seq = (select c.last_seq from app_public.conversations c where c.id = p.conversation_id)
       where p.conversation_id = ${groupId} and p.user_id = ${me} and p.left_seq is null
      returning 1
    )
    select exists (select from marked) as changed
  `);
}

/**
 * A page of the group's messages, newest first, before a group position,
 * as the API's JSON text: app_public.group_page, one statement that sets
 * the caller (run it on a pool, outside a transaction, like the direct
 * page). null when the caller was never a member.
 */
export async function getGroupPage(
  connection: CommonQueryMethods,
  caller: Caller,
  groupId: number,
  page: { limit: number; before?: number | undefined },
): Promise<string | null> {
  return oneStatementView(connection, caller,
    sql.fragment`app_public.group_page(${caller.role}, ${caller.id}, ${groupId}, ${page.before ?? null}, ${page.limit})`);
}
