--! Previous: sha1:6645630b346a4df305cc1b0866259afde0fed951
--! Hash: sha1:0b3d26c5f47b00404dc41e82c10bd6cd8a1c86cb
--! Message: Announcing triggers record the users a transaction touched

--------------------------------------------------------------------------------
-- One eviction mechanism: the triggers that announce a change also record,
-- for the writing transaction itself, which users' views it changed.
--
-- The NOTIFY (signalbox_conversations, signalbox_users) reaches every
-- instance after commit; the writer's own request must see its write before
-- its answer, without waiting for that echo. So the same triggers append the
-- users to the transaction-local setting signalbox.touched, which the API
-- reads at the end of a writing transaction and evicts after commit. Every
-- writer, any route, is covered by the triggers, not by route code.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  announced bigint;
  touched text;
begin
  -- One NOTIFY per conversation touched; identical payloads in a transaction
  -- are folded by PostgreSQL. The transition table is read alone: no join.
  if tg_op = 'DELETE' then
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high))::text)),
           string_agg(user_low || ',' || user_high, ',')
      from (select distinct user_low, user_high from old_messages) pairs into announced, touched;
  else
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high))::text)),
           string_agg(user_low || ',' || user_high, ',')
      from (select distinct user_low, user_high from new_messages) pairs into announced, touched;
  end if;
  -- For the writer itself (transaction-local, read by the API before commit).
  perform set_config('signalbox.touched',
                     concat_ws(',', nullif(current_setting('signalbox.touched', true), ''), touched), true);
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_change() is
  'pg_notify(''signalbox_conversations'', {users: [low, high]}) once per conversation a statement changed, and the same users appended to the transaction-local setting signalbox.touched (the writer''s own eviction).';

create or replace function app_private.tg_users__announce_deletion() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('signalbox_users', json_build_object('deletedUserId', old.id)::text);
  perform set_config('signalbox.touched',
                     concat_ws(',', nullif(current_setting('signalbox.touched', true), ''), old.id::text), true);
  return null;
end;
$$;
comment on function app_private.tg_users__announce_deletion() is
  'pg_notify(''signalbox_users'', {deletedUserId}) so caches and live streams drop the user at once; also appends the id to signalbox.touched.';
