--! Previous: sha1:d1a832f5006185c7b5bf80d3380f0f671edfdc97
--! Hash: sha1:3380313f04e382a0615e7017b92b5ab85fb75beb
--! Message: Live conversation events: message.created, message.edited, message.read on the delivery cursor, one per recipient, type and statement

--------------------------------------------------------------------------------
-- Live conversation events: message.created, message.edited, message.read.
--
-- The participants of a conversation receive these on their event stream
-- beside their notifications, with the same delivery cursor: each event
-- takes the recipient's next seq from app_private.delivery_counters under
-- the counter row's lock, held to commit (migration 000002), so per user
-- notifications and events together are numbered in commit order with no
-- gaps, and "everything after seq N" can neither skip nor repeat.
--
-- Produced by statement-level triggers on messages, so every writer is
-- covered (the API, psql, bulk SQL):
--   message.created  to both participants of each new message;
--   message.edited   to both participants, when content changed;
--   message.read     to the sender, when read went from false to true.
--
-- Batching: ONE event per recipient, type and statement, whatever the
-- statement's size. Its data is {"count": n, "messages": [...]}, holding
-- the first 100 messages of that statement for that recipient (by id) —
-- the full message for created/edited, {id, readAt} for read. When count
-- is above the list's length the client reloads the view instead. A
-- 10,000-row mark-read is one message.read event per sender, not 10,000.
--
-- Locks: every counter a statement takes is taken in user-id order. The
-- insert trigger _450 runs before _500_notify_receiver and takes all
-- participants' counters (sender and receiver), so _500 then only re-takes
-- rows this transaction holds: two people writing to each other at once
-- cannot deadlock on their counters.
--
-- Plans (the trap of migration 000003): a single-row insert uses a static
-- statement (no join); everything else is planned per statement (EXECUTE),
-- because it joins the transition tables and a plan cached for 3 rows
-- must not be reused for 30,000.
--
-- Retention: live_events is a delivery log, not a view; rows older than a
-- client could want to resume from can be purged with
--   delete from app_public.live_events where created_at < now() - interval '7 days';
-- a stream resuming from before a purge misses those events (it reloads
-- on the next one it gets).
--------------------------------------------------------------------------------

create table if not exists app_public.live_events (
  user_id bigint not null constraint live_events_user_id_fkey references app_public.users (id) on delete cascade,
  seq bigint not null,
  type text not null,
  data jsonb not null,
  created_at timestamptz not null default now(),
  constraint live_events_pkey primary key (user_id, seq),
  constraint live_events_type_check check (type in ('message.created', 'message.edited', 'message.read'))
);
comment on table app_public.live_events is
  'Live conversation events per recipient, numbered with the notifications'' seq (one delivery cursor per user); read by the event stream.';
comment on constraint live_events_pkey on app_public.live_events is 'The stream''s catch-up: a user''s events after a seq, in order.';
comment on constraint live_events_type_check on app_public.live_events is 'The event types the stream knows.';
comment on constraint live_events_user_id_fkey on app_public.live_events is 'A deleted user''s events go with them.';
alter table app_public.live_events enable row level security;
drop policy if exists own on app_public.live_events;
create policy own on app_public.live_events for select using (user_id = app_public.current_user_id());
comment on policy own on app_public.live_events is 'A user reads only their own events.';
grant select on app_public.live_events to :DATABASE_VISITOR;

-- A message as the API writes it (messageRow; src/queries/messages.ts
-- builds the same JSON for pages, test/live-events.test.ts holds them equal).
-- No SET clause (and not SECURITY DEFINER) so that PostgreSQL inlines it
-- into the statement that calls it: as a separate function call it was
-- planned anew on every single-row send (~150 µs). Its body names nothing
-- outside pg_catalog but its argument's columns.
create or replace function app_private.message_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object(
    'id', m.id, 'senderId', m.sender_id, 'receiverId', m.receiver_id, 'parentMessageId', m.parent_message_id,
    'content', m.content,
    'sentAt', to_char(m.sent_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'edited', m.edited,
    'editedAt', to_char(m.edited_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'read', m.read,
    'readAt', to_char(m.read_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'replyCount', m.reply_count)
$$;
comment on function app_private.message_json(app_public.messages) is
  'A message in the API''s JSON shape (ISO UTC times with milliseconds): the data of live events.';

-- The statement that records events: `items_sql` yields (user_id,
-- message_id, item) rows; one event per recipient, seq taken in recipient
-- order, the first 100 items by id. The triggers EXECUTE it (planned per
-- statement: its input may be 1 row or 100,000); it is built here once so
-- the three kinds share it. (A trigger's transition tables are visible only
-- to the trigger function itself, hence SQL text and not a function call.)
create or replace function app_private.live_events_sql(event_type text, items_sql text) returns text
  language sql immutable set search_path = pg_catalog, pg_temp
as $$
  select format($sql$
    with items as (%s),
    per_user as (
      select user_id, count(*) as n,
             json_agg(item order by message_id) filter (where rn <= 100) as list
        from (select i.*, row_number() over (partition by user_id order by message_id) as rn from items i) x
       group by user_id
    ),
    reserved as (
      insert into app_private.delivery_counters as c (user_id, last_seq)
      select user_id, 1 from per_user order by user_id
      on conflict (user_id) do update set last_seq = c.last_seq + 1
      returning c.user_id, c.last_seq
    ),
    recorded as (
      insert into app_public.live_events (user_id, seq, type, data)
      select p.user_id, r.last_seq, %L, json_build_object('count', p.n, 'messages', p.list)
        from per_user p join reserved r on r.user_id = p.user_id
      returning user_id
    )
    -- Wake the recipients' streams (the channel notifications use).
    select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) from recorded
  $sql$, items_sql, event_type)
$$;
comment on function app_private.live_events_sql(text, text) is
  'The statement the live-event triggers EXECUTE: one event per recipient of the items (user_id, message_id, item), seq from the recipient''s counter in user-id order, data {count, messages: first 100}, streams woken.';

create or replace function app_private.tg_messages__announce_live_insert() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  one app_public.messages;
  rows_in bigint;
  woken bigint;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 1 then
    -- Every API send: one message, one or two recipients, no join.
    select * into one from new_messages;
    with reserved as (
      insert into app_private.delivery_counters as c (user_id, last_seq)
      select distinct u, 1 from unnest(array[one.sender_id, one.receiver_id]) u order by u
      on conflict (user_id) do update set last_seq = c.last_seq + 1
      returning c.user_id, c.last_seq
    ), recorded as (
      insert into app_public.live_events (user_id, seq, type, data)
      select user_id, last_seq, 'message.created',
             json_build_object('count', 1, 'messages', json_build_array(app_private.message_json(one)))
        from reserved
      returning user_id
    )
    select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) into woken from recorded;
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
comment on function app_private.tg_messages__announce_live_insert() is
  'message.created to both participants of each new message: one event per participant and statement (live_events_sql), taking their counters in user-id order before _500_notify_receiver.';

drop trigger if exists _450_announce_live_insert on app_public.messages;
create trigger _450_announce_live_insert
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__announce_live_insert();
comment on trigger _450_announce_live_insert on app_public.messages is
  'Live message.created events; runs before _500_notify_receiver so all counters are locked in user-id order.';

create or replace function app_private.tg_messages__announce_live_update() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  -- Both join the transition tables: planned per statement (EXECUTE).
  execute app_private.live_events_sql('message.edited', $items$
    select distinct on (u.user_id, n.id) u.user_id, n.id as message_id, app_private.message_json(n) as item
      from new_messages n
      join old_messages o on o.id = n.id
      cross join lateral (values (n.sender_id), (n.receiver_id)) u (user_id)
     where n.content is distinct from o.content
  $items$);
  execute app_private.live_events_sql('message.read', $items$
    select n.sender_id as user_id, n.id as message_id,
           json_build_object('id', n.id, 'receiverId', n.receiver_id,
                             'readAt', to_char(n.read_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) as item
      from new_messages n
      join old_messages o on o.id = n.id
     where n.read and not o.read and n.sender_id <> n.receiver_id
  $items$);
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_live_update() is
  'message.edited to both participants when content changed; message.read (a read receipt) to the sender when read became true. One event per recipient, type and statement.';

drop trigger if exists _450_announce_live_update on app_public.messages;
create trigger _450_announce_live_update
  after update on app_public.messages
  referencing old table as old_messages new table as new_messages
  for each statement execute function app_private.tg_messages__announce_live_update();
comment on trigger _450_announce_live_update on app_public.messages is
  'Live message.edited and message.read events, batched per statement.';

create index if not exists live_events_created_at_idx on app_public.live_events (created_at);
comment on index app_public.live_events_created_at_idx is 'Serves the purge of old events.';
