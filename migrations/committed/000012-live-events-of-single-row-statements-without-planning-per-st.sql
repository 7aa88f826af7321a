--! Previous: sha1:08150ddacedfcbfb452e7ed745e241af01daedf2
--! Hash: sha1:61e460a89743c2ba06d4ca7ad6e00d495743c9ed
--! Message: Live events of single-row statements without planning per statement

--------------------------------------------------------------------------------
-- Live events of single-row statements without planning per statement.
--
-- Migration 000010 recorded every UPDATE's events through two EXECUTEd
-- statements, planned per call. Most UPDATEs touch one row — an edit, a
-- mark-read, and the parent's reply_count bumped by every reply — and each
-- paid those two plans: 1.7 ms per single-row mark-read instead of 0.1 ms,
-- and a reply cost 2.1 ms instead of 1.0 (2,000 of each in one psql
-- session). A one-row statement cannot meet the plan trap (a plan cached
-- for 3 rows reused for 30,000), so it now reads its one old and new row
-- into variables and records its events through record_live_event, whose
-- statements are planned once per session; statements of several rows
-- keep the per-statement plans. The insert trigger's one-row path uses the
-- same function, so "take the recipients' counters in user-id order,
-- record, wake" is written once for one item and once for many.
--
-- The API's timestamp format and a read receipt's JSON are functions too
-- (api_time, read_receipt_json), used by message_json and by both paths.
--------------------------------------------------------------------------------

-- A timestamptz as the API writes it: ISO 8601 in UTC, milliseconds
-- truncated (what parseTimestamptz in src/db/pool.ts makes of a decoded
-- row). Inlined by PostgreSQL: no SET clause, and STABLE like the to_char
-- it calls (an IMMUTABLE wrapper of a STABLE function is not inlined).
create or replace function app_private.api_time(t timestamptz) returns text
  language sql stable
as $$
  select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
comment on function app_private.api_time(timestamptz) is
  'A timestamp in the API''s format: ISO 8601, UTC, milliseconds, "Z".';

create or replace function app_private.message_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object(
    'id', m.id, 'senderId', m.sender_id, 'receiverId', m.receiver_id, 'parentMessageId', m.parent_message_id,
    'content', m.content, 'sentAt', app_private.api_time(m.sent_at),
    'edited', m.edited, 'editedAt', app_private.api_time(m.edited_at),
    'read', m.read, 'readAt', app_private.api_time(m.read_at),
    'replyCount', m.reply_count)
$$;
comment on function app_private.message_json(app_public.messages) is
  'A message in the API''s JSON shape: live events, and the pages the API builds in SQL (src/queries/messages.ts). Inlined (no SET clause).';

create or replace function app_private.read_receipt_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object('id', m.id, 'receiverId', m.receiver_id, 'readAt', app_private.api_time(m.read_at))
$$;
comment on function app_private.read_receipt_json(app_public.messages) is
  'The item of a message.read event: which message, who read it, when.';

-- The API's pages call message_json too (inlined, but still checked).
grant execute on function app_private.api_time(timestamptz) to :DATABASE_VISITOR;
grant execute on function app_private.message_json(app_public.messages) to :DATABASE_VISITOR;

-- One event for one item (a one-row statement): each recipient's next seq,
-- counters taken in user-id order, data {count: 1, messages: [item]}, the
-- recipients' streams woken. Its input is never more than two rows, so the
-- plans PL/pgSQL caches for it are right every time.
create or replace function app_private.record_live_event(recipients bigint[], event_type text, item json) returns void
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  woken bigint;
begin
  with reserved as (
    insert into app_private.delivery_counters as c (user_id, last_seq)
    select distinct u, 1 from unnest(recipients) u order by u
    on conflict (user_id) do update set last_seq = c.last_seq + 1
    returning c.user_id, c.last_seq
  ), recorded as (
    insert into app_public.live_events (user_id, seq, type, data)
    select user_id, last_seq, event_type, json_build_object('count', 1, 'messages', json_build_array(item))
      from reserved
    returning user_id
  )
  select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) into woken from recorded;
end;
$$;
comment on function app_private.record_live_event(bigint[], text, json) is
  'Records one live event (one item) for each recipient, seq from their counters in user-id order, and wakes their streams: the one-row statements'' path.';

create or replace function app_private.tg_messages__announce_live_insert() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  one app_public.messages;
  rows_in bigint;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 1 then
    -- Every API send: one message, no join, nothing planned per statement.
    select * into one from new_messages;
    perform app_private.record_live_event(array[one.sender_id, one.receiver_id], 'message.created', app_private.message_json(one));
  else
    execute app_private.live_events_sql('message.created', $items$
      select distinct on (u.user_id, m.id) u.user_id, m.id as message_id, app_private.message_json(m) as item
        from new_messages m
        cross join lateral (values (m.sender_id), (m.receiver_id)) u (user_id)
    $items$);
  end if;
  return null;
end;
$$;

create or replace function app_private.tg_messages__announce_live_update() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  rows_in bigint;
  n app_public.messages;
  o app_public.messages;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 0 then
    return null;
  elsif rows_in = 1 then
    -- An edit, a mark-read, a parent's reply_count: one row, no join.
    select * into n from new_messages;
    select * into o from old_messages;
    if n.content is distinct from o.content then
      perform app_private.record_live_event(array[n.sender_id, n.receiver_id], 'message.edited', app_private.message_json(n));
    end if;
    if n.read and not o.read and n.sender_id <> n.receiver_id then
      perform app_private.record_live_event(array[n.sender_id], 'message.read', app_private.read_receipt_json(n));
    end if;
    return null;
  end if;
  -- Several rows: both join the transition tables, planned per statement.
  execute app_private.live_events_sql('message.edited', $items$
    select distinct on (u.user_id, n.id) u.user_id, n.id as message_id, app_private.message_json(n) as item
      from new_messages n
      join old_messages o on o.id = n.id
      cross join lateral (values (n.sender_id), (n.receiver_id)) u (user_id)
     where n.content is distinct from o.content
  $items$);
  execute app_private.live_events_sql('message.read', $items$
    select n.sender_id as user_id, n.id as message_id, app_private.read_receipt_json(n) as item
      from new_messages n
      join old_messages o on o.id = n.id
     where n.read and not o.read and n.sender_id <> n.receiver_id
  $items$);
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_live_update() is
  'message.edited to both participants when content changed; message.read (a read receipt) to the sender when read became true. One event per recipient, type and statement: a one-row statement through record_live_event, several rows through live_events_sql (planned per statement).';
