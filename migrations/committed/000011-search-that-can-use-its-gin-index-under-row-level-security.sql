--! Previous: sha1:3380313f04e382a0615e7017b92b5ab85fb75beb
--! Hash: sha1:08150ddacedfcbfb452e7ed745e241af01daedf2
--! Message: Search that can use its GIN index under row-level security

--------------------------------------------------------------------------------
-- Search that can use its GIN index under row-level security.
--
-- Under RLS the policy's quals run before any qual that is not leakproof,
-- and `tsvector @@ tsquery` (ts_match_vq) is not: it can only filter rows
-- the policy already let through, so messages_search_idx was never used.
-- A caller with 100,000 messages waited 220 ms for a word in 20 of them,
-- with the index or without.
--
-- app_private.search_hits finds the caller's matching messages as the
-- table's owner (no RLS), so the planner may take the GIN index for a rare
-- word and the caller's own messages for a common one. It applies the
-- same rule the policy does — app_public.is_participant with
-- current_user_id(), never an id it is given — and returns only ids and
-- ranks; the API then reads the rows themselves under RLS as usual.
-- Planned per call with the query's value (EXECUTE), so the choice follows
-- the word's frequency in the column's statistics.
--------------------------------------------------------------------------------

create or replace function app_private.search_hits(
  query tsquery,
  with_user bigint,
  after_rank real,
  after_id bigint,
  max_rows int
) returns table (id bigint, rank real)
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  me bigint := app_public.current_user_id();
begin
  if me is null then
    return;
  end if;
  return query execute $sql$
    select m.id, ts_rank(m.search, $1) as rank
      from app_public.messages m
     where m.search @@ $1
       and app_public.is_participant(m.sender_id, m.receiver_id, $2)
       and ($3::bigint is null or (m.user_low = least($2, $3) and m.user_high = greatest($2, $3)))
       and ($5::bigint is null or (ts_rank(m.search, $1), m.id) < ($4, $5))
     order by 2 desc, 1 desc
     limit $6
  $sql$ using query, me, with_user, after_rank, after_id, least(greatest(max_rows, 1), 1000);
end;
$$;
comment on function app_private.search_hits(tsquery, bigint, real, bigint, int) is
  'The caller''s (current_user_id()) messages matching a tsquery, by ts_rank then id, after a (rank, id) cursor, optionally in one conversation: ids and ranks only. SECURITY DEFINER so that the GIN index can serve @@ (not leakproof, so under RLS only a filter); scoped by the same participant rule as the policies.';
revoke all on function app_private.search_hits(tsquery, bigint, real, bigint, int) from public;
grant execute on function app_private.search_hits(tsquery, bigint, real, bigint, int) to :DATABASE_VISITOR;
