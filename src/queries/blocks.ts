import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { userRow } from './schemas';

/**
 * Blocking (migration 000019): rows of app_public.blocks, the caller's own
 * under row-level security. The rule itself (SB007 on a blocked sender's
 * message) is a trigger: these only add, remove and list.
 */

const blockResult = z.object({ found: z.boolean() });

/** Blocks `userId` for the caller (already blocked: nothing changes); false when there is no such user. */
export async function blockUser(connection: CommonQueryMethods, me: number, userId: number): Promise<boolean> {
  return connection.oneFirst(sql.type(blockResult)`
    with target as (select id from app_public.users where id = ${userId}),
         added as (
           insert into app_public.blocks (blocker_id, blocked_id)
           select ${me}, id from target
           on conflict (blocker_id, blocked_id) do nothing
         )
    select exists (select from target) as found
  `);
}

/** Unblocks `userId` for the caller (not blocked: nothing changes). */
export async function unblockUser(connection: CommonQueryMethods, me: number, userId: number): Promise<void> {
  await connection.query(sql.unsafe`delete from app_public.blocks where blocker_id = ${me} and blocked_id = ${userId}`);
}

export const blockRow = z.object({ user: userRow, blockedAt: z.string() });

/** The caller's blocks, newest first, each with the blocked user. */
export async function listBlocks(connection: CommonQueryMethods): Promise<readonly z.infer<typeof blockRow>[]> {
  return connection.any(sql.type(blockRow)`
    select json_build_object('id', u.id, 'username', u.username, 'displayName', u.display_name,
                             'createdAt', app_public.api_time(u.created_at)) as "user",
           app_public.api_time(b.created_at) as "blockedAt"
      from app_public.blocks b
      join app_public.users u on u.id = b.blocked_id
     order by b.created_at desc, b.blocked_id desc
  `);
}
