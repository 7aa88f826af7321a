--! Previous: sha1:61e460a89743c2ba06d4ca7ad6e00d495743c9ed
--! Hash: sha1:e193c8d57ec638040f55c95167e70ea554e03b23
--! Message: The conversation page in one statement that sets the caller itself

--------------------------------------------------------------------------------
-- The conversation page in one statement (issue 12).
--
-- Through Slonik a read view is four round trips: BEGIN, the caller's
-- settings, the query, COMMIT. Slonik speaks only the extended protocol
-- (no statements batched in one message) and has no pipelining, so the
-- four cannot share a trip; for the conversation page — the view every
-- open conversation and every cache miss reads, and the cheapest query of
-- all — those trips were most of the request (bench/REPORT.md, issue 12).
--
-- This function takes the caller and sets it itself, transaction-locally,
-- before it plans its query, the same three settings asUser sets
-- (src/db/transaction.ts): the request role, the user id, and bitmap scans
-- off (src/queries/conversations.ts says why). The query then runs as the
-- request role under row-level security, as in any other view; called in
-- autocommit, the settings end with the statement. PL/pgSQL keeps one plan
-- per session for it (re-planned should the role ever differ).
--
-- Not granted to the request role: only the connecting role calls it, as
-- it is the one that sets the caller everywhere else.
--------------------------------------------------------------------------------

create or replace function app_private.conversation_page(
  visitor text,
  caller bigint,
  partner bigint,
  before bigint,
  page_size int
) returns text
  language plpgsql
  volatile
as $$
declare
  ids bigint[];
  messages text[];
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true),
          set_config('enable_bitmapscan', 'off', true);
  if not exists (select 1 from app_public.users where id = partner) then
    return null;
  end if;
  -- A range of messages_conversation_idx's own key in that key's order
  -- (migration 000008): the index walked backwards from the cursor, one row
  -- past the page to know whether another page follows.
  select array_agg(p.id order by p.id desc), array_agg(p.message order by p.id desc)
    into ids, messages
    from (
      select m.id, app_private.message_json(m)::text as message
        from app_public.messages m
       where (m.user_low, m.user_high, m.id) > (least(caller, partner), greatest(caller, partner), 0)
         and (m.user_low, m.user_high, m.id) < (least(caller, partner), greatest(caller, partner),
                                                coalesce(before, 9223372036854775807))
       order by m.user_low desc, m.user_high desc, m.id desc
       limit page_size + 1
    ) p;
  return '{"messages":[' || coalesce(array_to_string(messages[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(ids) > page_size then ids[page_size]::text else 'null' end || '}';
end;
$$;

comment on function app_private.conversation_page(text, bigint, bigint, bigint, int) is
  E'GET /conversations/:userId/messages in one statement: sets the request role and the caller (transaction-locally) and answers the page as the API''s JSON text ({messages, nextCursor}); null when the partner does not exist. Row-level security applies as in every view.';
