import { sql, type FragmentSqlToken } from 'slonik';

/**
 * The visibility rule, in SQL once (migrations 000006 and 000020): the
 * row-level security policy on messages and these fragments call the same
 * functions. A direct message is visible to its two participants
 * (app_public.is_participant, an inlined SQL function, so queries keep
 * their index plans); a group message to whoever's membership period
 * covers it (app_public.reads_group_message, STRICT, so a direct message
 * never calls it). Queries scope by the caller explicitly as well; the
 * policies are the second wall.
 */

/** The messages row `alias` (default `m`) is visible to `me`. */
export const visibleTo = (me: number, alias = 'm'): FragmentSqlToken => {
  const col = (name: string) => sql.identifier([alias, name]);
  return sql.fragment`(app_public.is_participant(${col('sender_id')}, ${col('receiver_id')}, ${me}::bigint)
    or app_public.reads_group_message(${col('group_id')}, ${col('group_seq')}, ${me}::bigint))`;
};

/** `m` is a direct message `me` takes part in (the direct conversations' rule). */
export const directWith = (me: number): FragmentSqlToken =>
  sql.fragment`(m.group_id is null and app_public.is_participant(m.sender_id, m.receiver_id, ${me}::bigint))`;

/** The other participant of `m`'s conversation, seen from `me`. */
export const partnerOf = (me: number): FragmentSqlToken =>
  sql.fragment`app_public.other_participant(m.sender_id, m.receiver_id, ${me}::bigint)`;
