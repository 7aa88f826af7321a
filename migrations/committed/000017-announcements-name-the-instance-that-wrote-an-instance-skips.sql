--! Previous: sha1:5fa02d68f9d383535b4b4e970c1f7625bb23d746
--! Hash: sha1:848ec94ea4ebabcc891c12ad353c08674221eed0
--! Message: Announcements name the instance that wrote: an instance skips exactly its own echoes

-- Enter migration here

--------------------------------------------------------------------------------
-- Which instance wrote: every announcement of a change says so.
--
-- An instance evicts its own writes' views before answering (the writer
-- reads signalbox.touched), so the NOTIFY of that write, coming back to it,
-- is its own echo and may be skipped. It used to recognise the echo by the
-- backend pid that sent it; behind PgBouncer in transaction mode instances
-- share server backends, so another instance's write through a backend
-- this one used a moment before was taken for an echo and its eviction
-- skipped. Now the API puts its instance id in the transaction's settings
-- (signalbox.instance, in the statement that sets the role and the user)
-- and the announcing triggers copy it into the payload; an instance skips
-- exactly the announcements that carry its own id. A write from psql
-- carries none, and every instance acts on it.
--------------------------------------------------------------------------------

create function app_private.announcing_instance() returns text
  language sql stable parallel safe
as $$
  select nullif(current_setting('signalbox.instance', true), '')
$$;
comment on function app_private.announcing_instance() is
  'The id of the signalbox instance whose transaction this is (the transaction-local setting signalbox.instance), or null (psql, a job): the announcing triggers put it in their NOTIFY payloads.';

create or replace function app_private.tg_messages__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  announced bigint;
  touched text;
  instance text := app_private.announcing_instance();
begin
  -- One NOTIFY per conversation touched; identical payloads in a transaction
  -- are folded by PostgreSQL. The transition table is read alone: no join.
  if tg_op = 'DELETE' then
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high), 'instance', instance)::text)),
           string_agg(user_low || ',' || user_high, ',')
      from (select distinct user_low, user_high from old_messages) pairs into announced, touched;
  else
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high), 'instance', instance)::text)),
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
  'pg_notify(''signalbox_conversations'', {users: [low, high], instance}) once per conversation a statement changed, and the same users appended to the transaction-local setting signalbox.touched (the writer''s own eviction).';

create or replace function app_private.tg_users__announce_deletion() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('signalbox_users',
                    json_build_object('deletedUserId', old.id, 'instance', app_private.announcing_instance())::text);
  perform set_config('signalbox.touched',
                     concat_ws(',', nullif(current_setting('signalbox.touched', true), ''), old.id::text), true);
  return null;
end;
$$;
comment on function app_private.tg_users__announce_deletion() is
  'pg_notify(''signalbox_users'', {deletedUserId, instance}) so caches and live streams drop the user at once; also appends the id to signalbox.touched.';

create or replace function app_private.tg_sessions__announce_revocation() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  users bigint[];
begin
  -- The transition table is read alone (no join, no plan that depends on
  -- its size); distinct users, at most 201 of them.
  select array_agg(user_id) into users
    from (select distinct user_id from old_sessions limit 201) u;
  if users is null then
    return null;
  end if;
  perform pg_notify('signalbox_sessions',
                    case when cardinality(users) > 200
                         then json_build_object('all', true, 'instance', app_private.announcing_instance())
                         else json_build_object('users', users, 'instance', app_private.announcing_instance()) end::text);
  perform set_config('signalbox.revoked',
                     concat_ws(',', nullif(current_setting('signalbox.revoked', true), ''),
                               case when cardinality(users) > 200 then 'all' else array_to_string(users, ',') end),
                     true);
  return null;
end;
$$;
comment on function app_private.tg_sessions__announce_revocation() is
  'pg_notify(''signalbox_sessions'', {users: [...], instance}) (or {all: true, instance} above 200 users) for sessions a statement deleted or changed, so every instance drops them from its session cache; the same users appended to the transaction-local signalbox.revoked (the writer''s own instance).';
