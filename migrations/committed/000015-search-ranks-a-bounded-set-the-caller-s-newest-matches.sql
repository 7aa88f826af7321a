--! Previous: sha1:dd9668a7089213d8c064e16080f223015b923e9b
--! Hash: sha1:110ecd6ab2fda4ee36a1990122ae6861f91f27ea
--! Message: Search ranks a bounded set: the caller's newest matches

--------------------------------------------------------------------------------
-- Search ranks a bounded set: the caller's newest matches.
--
-- search_hits ranked every message of the caller that matched: a user with
-- 200,000 messages searching for a common word computed 200,000 ts_ranks
-- (100–130 ms a search), and 40 such searches at once took the database
-- from everyone. Now it ranks at most `rank_window` matches, the caller's
-- newest (by id, which follows sending order), and pages through those by
-- (rank, id) as before. A match older than the window is not found: the
-- README says so and how to narrow a search (with=, more words).
--------------------------------------------------------------------------------

drop function app_private.search_hits(tsquery, bigint, real, bigint, int);

create function app_private.search_hits(
  query tsquery,
  with_user bigint,
  after_rank real,
  after_id bigint,
  max_rows int,
  rank_window int
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
    select w.id, ts_rank(w.search, $1) as rank
      from (select m.id, m.search
              from app_public.messages m
             where m.search @@ $1
               and app_public.is_participant(m.sender_id, m.receiver_id, $2)
               and ($3::bigint is null or (m.user_low = least($2, $3) and m.user_high = greatest($2, $3)))
             order by m.id desc
             limit $7) w
     where ($5::bigint is null or (ts_rank(w.search, $1), w.id) < ($4, $5))
     order by 2 desc, 1 desc
     limit $6
  $sql$ using query, me, with_user, after_rank, after_id, least(greatest(max_rows, 1), 1000),
              least(greatest(rank_window, 1), 1000000);
end;
$$;
comment on function app_private.search_hits(tsquery, bigint, real, bigint, int, int) is
  'The caller''s (current_user_id()) messages matching a tsquery, ranked among the caller''s newest rank_window matches, by ts_rank then id, after a (rank, id) cursor, optionally in one conversation: ids and ranks only. SECURITY DEFINER so that the GIN index can serve @@ (not leakproof, so under RLS only a filter); scoped by the same participant rule as the policies.';
revoke all on function app_private.search_hits(tsquery, bigint, real, bigint, int, int) from public;
grant execute on function app_private.search_hits(tsquery, bigint, real, bigint, int, int) to :DATABASE_VISITOR;
