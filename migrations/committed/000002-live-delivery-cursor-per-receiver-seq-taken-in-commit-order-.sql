--! Previous: sha1:0d1cc2a40602c5f89ce1e2b0c58b73b9be4694e9
--! Hash: sha1:5481b8ce7ad75cd001a87e156de9fb6387b38431
--! Message: Live delivery cursor: per-receiver seq taken in commit order; thread position index

--------------------------------------------------------------------------------
-- Live delivery cursor: a per-receiver sequence that follows commit order.
--
-- Notification ids are taken at INSERT and become visible at COMMIT, in a
-- different order, so "every notification above the last id sent" skips a
-- lower id that commits after a higher one. Instead every notification gets
-- `seq`, its receiver's next number, handed out by the notification trigger
-- while it holds the row lock on the receiver's counter until its
-- transaction ends. A second writer to the same receiver waits for that lock,
-- so per receiver numbers are taken in commit order: when seq N is visible,
-- every seq below N has committed or was never taken (a rolled-back
-- transaction also rolls back its increment, so there are no gaps either,
-- except those left by deleted notifications). "Everything after the last
-- seq sent" is therefore a cursor that cannot skip or repeat.
--
-- The cost: concurrent writers to ONE receiver serialise on its counter row
-- from their notification insert to their commit; writers to different
-- receivers do not touch each other. Bulk statements lock their receivers'
-- counters in user-id order, so two bulk statements cannot deadlock on them.
--------------------------------------------------------------------------------

-- Re-runnable: graphile-migrate's watch mode applies this file repeatedly.
drop trigger if exists _500_notify_receiver on app_public.messages;
drop table if exists app_private.delivery_counters;
alter table app_public.notifications drop column if exists seq;

create table app_private.delivery_counters (
  user_id bigint primary key references app_public.users on delete cascade,
  last_seq bigint not null default 0
    constraint delivery_counters_last_seq_non_negative check (last_seq >= 0)
);
comment on table app_private.delivery_counters is
  'Each user''s last live-delivery sequence number. The notification trigger increments it under a row lock held to commit, so a user''s numbers commit in order.';
comment on column app_private.delivery_counters.last_seq is
  'The highest seq handed out to this user; the next notification gets last_seq + 1.';

alter table app_public.notifications add column seq bigint;
comment on column app_public.notifications.seq is
  'The receiver''s delivery sequence number: per user, increasing in commit order, so it is the live stream''s cursor (SSE id and Last-Event-ID).';

-- Existing notifications are numbered in id order (what the old cursor
-- assumed); the counters continue from there.
update app_public.notifications n
   set seq = numbered.seq
  from (select id, row_number() over (partition by user_id order by id) as seq
          from app_public.notifications) numbered
 where numbered.id = n.id;
insert into app_private.delivery_counters (user_id, last_seq)
select user_id, max(seq) from app_public.notifications group by user_id;

alter table app_public.notifications alter column seq set not null;
alter table app_public.notifications
  add constraint notifications_user_seq_key unique (user_id, seq);
comment on constraint notifications_user_seq_key on app_public.notifications is
  'One notification per receiver and seq; serves the live stream''s catch-up (user_id = $1 and seq > $2 order by seq).';

-- After insert: the receiver's notification (the post_save signal), numbered.
create or replace function app_private.tg_messages__notify_receiver() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  receivers bigint[];
  block_ends bigint[];
  announced bigint;
begin
  -- 1. Reserve a block of numbers per receiver. ON CONFLICT DO UPDATE locks
  --    each counter row until this transaction ends; rows are taken in
  --    user-id order so bulk statements cannot deadlock each other here.
  --    It reads only the transition table, so its cached plan is right at
  --    any size.
  with reserved as (
    insert into app_private.delivery_counters as c (user_id, last_seq)
    select receiver_id, count(*)
      from new_messages
     where sender_id <> receiver_id
     group by receiver_id
     order by receiver_id
    on conflict (user_id) do update set last_seq = c.last_seq + excluded.last_seq
    returning c.user_id, c.last_seq
  )
  select array_agg(user_id), array_agg(last_seq) into receivers, block_ends from reserved;

  -- 2. Number the notifications from the reserved blocks (a block ends at
  --    the counter's new value).
  if receivers is null then
    return null; -- only messages to oneself: nobody to notify
  elsif cardinality(receivers) = 1 then
    -- One receiver (every API send): no join, so the cached plan is right
    -- at any size, and nothing is planned per statement.
    insert into app_public.notifications (user_id, message_id, kind, seq)
    select n.receiver_id, n.id,
           case when n.parent_message_id is null then 'message' else 'reply' end,
           block_ends[1] - count(*) over () + row_number() over (order by n.id)
      from new_messages n
     where n.sender_id <> n.receiver_id;
  else
    -- Several receivers join their blocks: planned per statement (EXECUTE),
    -- because a plan cached for a 3-row insert would be reused for a
    -- 100,000-row one (a nested loop over both), and the other way round.
    execute $sql$
      insert into app_public.notifications (user_id, message_id, kind, seq)
      select n.receiver_id, n.id,
             case when n.parent_message_id is null then 'message' else 'reply' end,
             b.block_end - count(*) over (partition by n.receiver_id)
                         + row_number() over (partition by n.receiver_id order by n.id)
        from new_messages n
        join unnest($1, $2) as b (user_id, block_end) on b.user_id = n.receiver_id
       where n.sender_id <> n.receiver_id
    $sql$ using receivers, block_ends;
  end if;

  -- 3. Wake the receivers' streams: the user id only (identical payloads in
  --    one transaction fold into one), delivered on commit, so a rolled-back
  --    insert announces nothing.
  select count(pg_notify('signalbox_notifications', json_build_object('userId', r)::text))
    from unnest(receivers) r
    into announced;
  return null;
end;
$$;
comment on function app_private.tg_messages__notify_receiver() is
  'Inserts one notification per new message whose receiver is not its sender, numbered from the receiver''s delivery counter (locked to commit), then pg_notify(''signalbox_notifications'', {userId}) once per receiver.';
create trigger _500_notify_receiver
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__notify_receiver();
comment on trigger _500_notify_receiver on app_public.messages is
  'The post_save signal: new messages notify their receivers with a commit-ordered seq; statement-level so bulk inserts stay cheap.';

--------------------------------------------------------------------------------
-- Thread pages: a thread is read in (depth, id) order a page at a time.
-- The level-by-level walk takes each level's rows from this index, so a page
-- costs its own size, not the thread's. It also serves the cascade from a
-- deleted root (its leading column), so the old single-column index goes.
--------------------------------------------------------------------------------
drop index if exists app_public.messages_thread_root_id_idx;
drop index if exists app_public.messages_thread_position_idx;
create index messages_thread_position_idx on app_public.messages (thread_root_id, depth, id);
comment on index app_public.messages_thread_position_idx is
  'A thread level by level in sending order (thread pages); serves the cascade from a deleted root.';
