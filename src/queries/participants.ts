import { sql, type FragmentSqlToken } from 'slonik';

/**
 * The visibility rule, in SQL once (migration 000006): the row-level
 * security policies and these fragments both call app_public.is_participant,
 * an inlined SQL function, so queries keep their index plans. Queries scope
 * by the caller explicitly as well; the policies are the second wall.
 */

/** `m` (a messages row) is visible to `me`. */
export const visibleTo = (me: number): FragmentSqlToken =>
  sql.fragment`app_public.is_participant(m.sender_id, m.receiver_id, ${me}::bigint)`;

/** The other participant of `m`'s conversation, seen from `me`. */
export const partnerOf = (me: number): FragmentSqlToken =>
  sql.fragment`app_public.other_participant(m.sender_id, m.receiver_id, ${me}::bigint)`;
