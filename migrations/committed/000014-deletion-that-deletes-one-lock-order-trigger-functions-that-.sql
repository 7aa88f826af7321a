--! Previous: sha1:e193c8d57ec638040f55c95167e70ea554e03b23
--! Hash: sha1:dd9668a7089213d8c064e16080f223015b923e9b
--! Message: Deletion that deletes, one lock order, trigger functions that see their own statement, retention

--------------------------------------------------------------------------------
-- Deletion that deletes, one lock order, trigger functions that see their
-- own statement, and what the retention job needs.
--
-- 1. Live events keep message ids, never copies of messages. Until now each
--    event held its messages' JSON (content included) and had no foreign
--    key to them: after an account or a message was deleted, a stream
--    resumed from an early Last-Event-ID replayed the deleted words. An
--    event now holds the ids of (at most 100 of) its messages and how many
--    the statement touched; the stream's catch-up builds each message's
--    JSON from the messages table when it sends the event. A deleted
--    message has no row to build from, so no copy of its content can
--    survive it, in this table or in any added later that follows the same
--    rule. A replayed event shows the message as it is now (an edit made
--    after it included).
--
-- 2. One lock order for every write path (README, "Lock order"):
--      the users row an account deletion removes (first, by DELETE itself),
--      then the message rows a statement writes,
--      then rows hanging off them (notifications marked read),
--      then the parent a reply is counted on,
--      then the delivery counters, in user-id order.
--    Before, a reply locked the participants' counters (_450/_500) before
--    its parent (_600), while an edit or a mark-read locked the message
--    first and the counters after: ~1 deadlock in 10 racing pairs. The
--    reply count now runs first (_420) and the notifications are marked
--    before the counters are taken (_430).
--    An account deletion locks the users row first; anything that locked a
--    message row and then checked a foreign key to users (a live event's
--    user_id, a first delivery counter) waited for it in the other order.
--    live_events and delivery_counters therefore lose their foreign key to
--    users: a trigger on users deletes them after every cascade has run
--    (_200_forget_delivery_state; AFTER ROW triggers fire in name order,
--    and the cascades' RI_ConstraintTrigger_* names sort before it).
--
-- 3. Every trigger function that reads tables is VOLATILE, so it sees the
--    rows its own statement inserted before the current one: a multi-row
--    INSERT or a COPY that lists a parent before its replies works.
--
-- 4. Retention: the indexes the prune reads, each user's stream horizon
--    (a catch-up from before it answers `reset`), the prune's audit table,
--    and the prune itself as a procedure a DBA can CALL.
--------------------------------------------------------------------------------

-- 1. Live events: ids, not copies --------------------------------------------

alter table app_public.live_events
  add column message_ids bigint[],
  add column message_count integer;
-- Existing events: their listed messages' ids, in the order they were listed.
update app_public.live_events
   set message_ids = array(select (e.v->>'id')::bigint
                             from jsonb_array_elements(data->'messages') with ordinality e (v, i) order by e.i),
       message_count = (data->>'count')::integer;
alter table app_public.live_events
  alter column message_ids set not null,
  alter column message_count set not null,
  add constraint live_events_message_count_positive check (message_count >= cardinality(message_ids) and message_count > 0),
  drop column data,
  drop constraint live_events_user_id_fkey;
comment on column app_public.live_events.message_ids is
  'The first 100 messages of the statement that caused the event, by id: the catch-up builds their JSON from the messages table, so a deleted message leaves no copy here.';
comment on column app_public.live_events.message_count is
  'How many messages the statement touched for this recipient (when larger than message_ids, the client reloads the view).';
comment on column app_public.live_events.user_id is
  'The recipient. No foreign key (lock order, see _200_forget_delivery_state on users): a deleted user''s events go with the account all the same.';

drop function app_private.record_live_event(bigint[], text, json);

create function app_private.record_live_event(recipients bigint[], event_type text, message_id bigint) returns void
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
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
    insert into app_public.live_events (user_id, seq, type, message_ids, message_count)
    select user_id, last_seq, event_type, array[message_id], 1
      from reserved
    returning user_id
  )
  select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) into woken from recorded;
end;
$$;
comment on function app_private.record_live_event(bigint[], text, bigint) is
  'Records one live event (one message) for each recipient, seq from their counters in user-id order, and wakes their streams: the one-row statements'' path.';

create or replace function app_private.live_events_sql(event_type text, items_sql text) returns text
  language sql immutable
  set search_path to pg_catalog, pg_temp
as $_$
  select format($sql$
    with items as (%s),
    per_user as (
      select user_id, count(*) as n,
             array_agg(message_id order by message_id) filter (where rn <= 100) as ids
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
      insert into app_public.live_events (user_id, seq, type, message_ids, message_count)
      select p.user_id, r.last_seq, %L, p.ids, p.n
        from per_user p join reserved r on r.user_id = p.user_id
      returning user_id
    )
    -- Wake the recipients' streams (the channel notifications use).
    select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) from recorded
  $sql$, items_sql, event_type)
$_$;
comment on function app_private.live_events_sql(text, text) is
  'The statement the live-event triggers EXECUTE: one event per recipient of the items (user_id, message_id), seq from the recipient''s counter in user-id order, the first 100 message ids and the count, streams woken.';

create or replace function app_private.tg_messages__announce_live_insert() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $_$
declare
  one app_public.messages;
  rows_in bigint;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 1 then
    -- Every API send: one message, no join, nothing planned per statement.
    select * into one from new_messages;
    perform app_private.record_live_event(array[one.sender_id, one.receiver_id], 'message.created', one.id);
  else
    execute app_private.live_events_sql('message.created', $items$
      select distinct u.user_id, m.id as message_id
        from new_messages m
        cross join lateral (values (m.sender_id), (m.receiver_id)) u (user_id)
    $items$);
  end if;
  return null;
end;
$_$;

create or replace function app_private.tg_messages__announce_live_update() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $_$
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
      perform app_private.record_live_event(array[n.sender_id, n.receiver_id], 'message.edited', n.id);
    end if;
    if n.read and not o.read and n.sender_id <> n.receiver_id then
      perform app_private.record_live_event(array[n.sender_id], 'message.read', n.id);
    end if;
    return null;
  end if;
  -- Several rows: both join the transition tables, planned per statement.
  execute app_private.live_events_sql('message.edited', $items$
    select distinct u.user_id, n.id as message_id
      from new_messages n
      join old_messages o on o.id = n.id
      cross join lateral (values (n.sender_id), (n.receiver_id)) u (user_id)
     where n.content is distinct from o.content
  $items$);
  execute app_private.live_events_sql('message.read', $items$
    select n.sender_id as user_id, n.id as message_id
      from new_messages n
      join old_messages o on o.id = n.id
     where n.read and not o.read and n.sender_id <> n.receiver_id
  $items$);
  return null;
end;
$_$;

-- The catch-up (run as the request role) builds read receipts too.
grant execute on function app_private.read_receipt_json(app_public.messages) to :DATABASE_VISITOR;

-- 2. One lock order -----------------------------------------------------------

-- The reply count first (the parent), then the live events and the
-- notifications (the counters). AFTER triggers of one event fire in name order.
drop trigger _600_reply_count_on_insert on app_public.messages;
drop trigger _600_reply_count_on_delete on app_public.messages;
create trigger _420_reply_count_on_insert
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__maintain_reply_count();
create trigger _420_reply_count_on_delete
  after delete on app_public.messages
  referencing old table as old_messages
  for each statement execute function app_private.tg_messages__maintain_reply_count();

comment on trigger _420_reply_count_on_insert on app_public.messages is
  'New replies raise their parent''s reply_count: the parent is locked before the delivery counters (_450, _500), the lock order every path keeps.';
comment on trigger _420_reply_count_on_delete on app_public.messages is
  'Deleted replies lower their parent''s reply_count.';

-- Notifications of messages marked read: rows that hang off the messages,
-- before the counters a read receipt takes (_450).
drop trigger _700_read_notifications on app_public.messages;
create trigger _430_read_notifications
  after update on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__read_notifications();
comment on trigger _430_read_notifications on app_public.messages is
  'Messages that became read mark their notifications read (at the message''s read_at), before the read receipt takes the sender''s counter (_450).';

-- A user's delivery state goes with the account, after every cascade.
alter table app_private.delivery_counters drop constraint delivery_counters_user_id_fkey;
comment on table app_private.delivery_counters is
  'Per user, the last stream seq taken (notifications and live events share it). No foreign key to users: a first counter inserted after a message row was locked would check the users row in the opposite order to an account deletion; _200_forget_delivery_state on users deletes it.';

-- 3. Trigger functions that see their own statement --------------------------

alter function app_private.tg_messages__check_reply_conversation() volatile;
-- These read no table, but one rule is easier to keep (and to check in
-- test/sql/06_catalog.sql) than a list of exceptions: every trigger
-- function is VOLATILE.
alter function app_private.tg_messages__protect_derived_columns() volatile;
alter function app_private.tg_messages__check_participant_role() volatile;
alter function app_private.tg_messages__forbid_immutable_change() volatile;

-- 4. Retention ----------------------------------------------------------------

create table app_private.stream_horizons (
  user_id bigint primary key,
  pruned_through bigint not null check (pruned_through >= 0)
);
comment on table app_private.stream_horizons is
  'Per user, the highest stream seq the prune has removed (a live event or a read notification): a stream that resumes from a cursor below it gets `reset`, since what lay between is gone.';

create function app_private.tg_users__forget_delivery_state() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
begin
  delete from app_public.live_events where user_id = old.id;
  delete from app_private.delivery_counters where user_id = old.id;
  delete from app_private.stream_horizons where user_id = old.id;
  return null;
end;
$$;
comment on function app_private.tg_users__forget_delivery_state() is
  'Deletes a deleted user''s live events, delivery counter and stream horizon (tables without a foreign key to users, for the lock order).';
create trigger _200_forget_delivery_state
  after delete on app_public.users
  for each row execute function app_private.tg_users__forget_delivery_state();
comment on trigger _200_forget_delivery_state on app_public.users is
  'After every cascade of an account deletion (RI triggers sort first): the user''s live events, delivery counter and stream horizon go.';

-- What the prune reads, oldest first.
create index sessions_expires_at_idx on app_private.sessions (expires_at);
create index idempotency_keys_created_at_idx on app_private.idempotency_keys (created_at);
create index notifications_read_created_at_idx on app_public.notifications (created_at) where read_at is not null;
create index deleted_accounts_deleted_at_idx on app_private.deleted_accounts (deleted_at);
comment on index app_private.sessions_expires_at_idx is 'The prune''s expired sessions, oldest first.';
comment on index app_private.idempotency_keys_created_at_idx is 'The prune''s idempotency keys past their retention, oldest first.';
comment on index app_public.notifications_read_created_at_idx is 'The prune''s read notifications past their retention, oldest first (unread ones are not in it).';
comment on index app_private.deleted_accounts_deleted_at_idx is 'The prune''s deletion audit rows past their retention.';

create table app_private.prune_runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  sessions bigint not null,
  idempotency_keys bigint not null,
  live_events bigint not null,
  notifications bigint not null,
  deleted_accounts bigint not null,
  prune_runs bigint not null,
  settings jsonb not null
);
comment on table app_private.prune_runs is
  'One row per run of app_private.prune: when, how many rows of each kind it deleted, and the retention it applied.';
create index prune_runs_started_at_idx on app_private.prune_runs (started_at);
comment on index app_private.prune_runs_started_at_idx is 'The prune''s own audit rows past their retention.';

create function app_private.prune_batch(target text, cutoff timestamptz, batch_size integer) returns bigint
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $_$
declare
  spec record;
  deleted bigint;
begin
  -- What each kind is: its table, key, age column, which rows may go, and
  -- whether its rows are numbered on a user's stream (seq): those move the
  -- user's stream horizon.
  select * into spec from (values
    ('sessions',         'app_private.sessions',         'id',               'expires_at', 'true',                false),
    ('idempotency_keys', 'app_private.idempotency_keys', 'sender_id, key',   'created_at', 'true',                false),
    ('live_events',      'app_public.live_events',       'user_id, seq',     'created_at', 'true',                true),
    -- Read ones only: an unread notification stays until it is read.
    ('notifications',    'app_public.notifications',     'id',               'created_at', 'read_at is not null', true),
    ('deleted_accounts', 'app_private.deleted_accounts', 'id',               'deleted_at', 'true',                false),
    ('prune_runs',       'app_private.prune_runs',       'id',               'started_at', 'true',                false)
  ) k (name, tbl, key, age, condition, numbered) where k.name = target;
  if not found then
    raise exception 'unknown prune target %', target using errcode = '22023';
  end if;
  -- Oldest first, by the age column's index. SKIP LOCKED: a row the API
  -- holds is left for the next run, so a batch never waits on a request
  -- (and a request waits at most on one batch's commit, for rows nobody
  -- reads any more). Planned per call (EXECUTE): one plan per batch.
  execute format($sql$
    with gone as (
      delete from %1$s where (%2$s) in (
        select %2$s from %1$s where %3$s < $1 and %4$s order by %3$s limit $2 for update skip locked)
      returning %5$s)
    %6$s
    select count(*) from gone
  $sql$, spec.tbl, spec.key, spec.age, spec.condition,
    case when spec.numbered then 'user_id, seq' else '1' end,
    case when spec.numbered then $h$
    , horizon as (
      insert into app_private.stream_horizons as h (user_id, pruned_through)
      select user_id, max(seq) from gone group by user_id order by user_id
      on conflict (user_id) do update set pruned_through = greatest(h.pruned_through, excluded.pruned_through)
      returning 1)$h$ else '' end)
  into deleted using cutoff, batch_size;
  return deleted;
end;
$_$;
comment on function app_private.prune_batch(text, timestamptz, integer) is
  'Deletes at most batch_size rows of one kind older than cutoff (oldest first, skipping rows another transaction holds) and returns how many; live events and notifications move their users'' stream horizons.';

create procedure app_private.prune(
  live_events_retention interval default '7 days',
  notifications_retention interval default '90 days',
  audit_retention interval default '365 days',
  batch_size integer default 10000,
  idempotency_retention interval default '24 hours',
  inout run_id bigint default null
)
  -- No SET clause (a procedure with one may not COMMIT) and not SECURITY
  -- DEFINER: it runs as its caller and calls only qualified names.
  language plpgsql
as $$
declare
  started timestamptz := clock_timestamp();
  counts jsonb := '{}';
  target text;
  cutoff timestamptz;
  n bigint;
  total bigint;
begin
  if batch_size not between 1 and 10000 then
    raise exception 'batch_size must be between 1 and 10000, not %', batch_size using errcode = '22023';
  end if;
  -- Two prunes at once (a DBA's CALL beside the schedule) share the work:
  -- each skips the rows the other holds. No advisory lock: COMMIT is not
  -- allowed inside a block that could release one on error.
  foreach target in array array['sessions', 'idempotency_keys', 'live_events', 'notifications', 'deleted_accounts', 'prune_runs'] loop
    cutoff := started - case target
      when 'sessions' then interval '0'
      when 'idempotency_keys' then idempotency_retention
      when 'live_events' then live_events_retention
      when 'notifications' then notifications_retention
      else audit_retention end;
    total := 0;
    loop
      n := app_private.prune_batch(target, cutoff, batch_size);
      total := total + n;
      -- Each batch is its own transaction: its locks last one batch.
      commit;
      exit when n < batch_size;
    end loop;
    counts := counts || jsonb_build_object(target, total);
  end loop;
  insert into app_private.prune_runs
    (started_at, finished_at, sessions, idempotency_keys, live_events, notifications, deleted_accounts, prune_runs, settings)
  values (started, clock_timestamp(), (counts->>'sessions')::bigint, (counts->>'idempotency_keys')::bigint,
          (counts->>'live_events')::bigint, (counts->>'notifications')::bigint,
          (counts->>'deleted_accounts')::bigint, (counts->>'prune_runs')::bigint,
          jsonb_build_object('live_events_retention', live_events_retention, 'notifications_retention', notifications_retention,
                             'audit_retention', audit_retention, 'idempotency_retention', idempotency_retention,
                             'batch_size', batch_size))
  returning id into run_id;
  commit;
end;
$$;
comment on procedure app_private.prune(interval, interval, interval, integer, interval, bigint) is
  'Retention: deletes expired sessions, idempotency keys past idempotency_retention, live events past live_events_retention, read notifications past notifications_retention, deletion and prune audit rows past audit_retention; in batches of at most batch_size rows, each committed on its own; one prune_runs row per run, whose id it answers (run_id). CALL it outside a transaction block (psql: call app_private.prune();).';

create function app_private.stream_horizon() returns bigint
  language sql stable security definer
  set search_path to pg_catalog, pg_temp
as $$
  select coalesce((select pruned_through from app_private.stream_horizons
                    where user_id = app_public.current_user_id()), 0)
$$;
comment on function app_private.stream_horizon() is
  'The caller''s stream horizon (0 when nothing was pruned): a stream resuming from a cursor below it gets `reset`.';
grant execute on function app_private.stream_horizon() to :DATABASE_VISITOR;

-- A reply whose parent is deleted while its BEFORE triggers run: each of
-- them reads the parent with a snapshot of its own (VOLATILE), so the
-- receiver's default and the conversation check can see the parent and
-- this one, a moment later, not. It raises the missing parent's SB005
-- instead of leaving thread_root_id null (a NOT NULL violation, 23502).
create or replace function app_private.tg_messages__set_thread_position() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
begin
  if new.parent_message_id is null then
    new.thread_root_id := new.id;
    new.depth := 0;
  else
    select m.thread_root_id, m.depth + 1 into new.thread_root_id, new.depth
      from app_public.messages m where m.id = new.parent_message_id;
    if not found then
      raise exception 'parent message % does not exist', new.parent_message_id
        using errcode = 'SB005', hint = 'It was deleted while this reply was being written.';
    end if;
  end if;
  return new;
end;
$$;
