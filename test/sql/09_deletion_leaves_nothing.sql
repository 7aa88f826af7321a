-- plan: 8
-- Deleting an account leaves none of its words anywhere: a marker planted
-- in the account's name, messages, edits, replies, live events, idempotency
-- keys and sessions is searched for in every row of every table of every
-- schema after the deletion, once as a DBA does it (DELETE FROM users) and
-- once as the user does it (the request role, their own row).
\i test/sql/_assert.sql

\i test/sql/_people.sql
select 'marker' || substr(md5(random()::text), 1, 12) as marker \gset

-- Every table of every non-system schema whose rows, as text, hold the
-- marker (as the connecting role: row-level security does not hide any).
create function pg_temp.tables_holding(_marker text) returns text[]
  language plpgsql volatile as $$
declare
  found text[] := '{}';
  t regclass;
  hit boolean;
begin
  for t in
    select c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p', 'm')
       and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
       and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast_temp%'
  loop
    execute format('select exists (select 1 from %s x where x::text like %L)', t, '%' || _marker || '%') into hit;
    if hit then found := found || t::text; end if;
  end loop;
  return found;
end;
$$;

update app_public.users set display_name = 'Alice ' || :'marker' where id = :alice;
-- What alice writes, replies to her, edits, one message to herself, a bulk statement.
select pg_temp.act_as(:alice);
set local role :visitor;
insert into app_public.messages (sender_id, receiver_id, content)
  values (:alice, :bob, 'my phone number is ' || :'marker') returning id as m1 \gset
insert into app_public.messages (sender_id, receiver_id, content)
  select :alice, :carol, 'bulk ' || g || ' ' || :'marker' from generate_series(1, 3) g;
insert into app_public.messages (sender_id, receiver_id, content) values (:alice, :alice, 'note to self ' || :'marker');
update app_public.messages set content = 'edited ' || :'marker' where id = :m1;
insert into app_public.idempotency_keys (sender_id, key, request_hash, message_id)
  values (:alice, 'key-' || :'marker', sha256(:'marker'::bytea), :m1);
select pg_temp.act_as(:bob);
insert into app_public.messages (sender_id, parent_message_id, content) values (:bob, :m1, 'you said ' || :'marker');
update app_public.messages set read = true where id = :m1;
reset role;
select pg_temp.as_dba();
insert into app_private.sessions (token_hash, user_id, expires_at) values (sha256(:'marker'::bytea), :alice, now() + interval '1 day');

select pg_temp.ok(
  pg_temp.tables_holding(:'marker') @> array['app_public.users', 'app_public.messages', 'app_public.message_history', 'app_public.idempotency_keys'],
  'the scan finds the marker where it was planted');
select pg_temp.ok(
  (select count(*) > 0 from app_public.live_events where user_id in (:bob, :carol)),
  'the other participants have live events about alice''s messages');

savepoint planted;

-- As a DBA.
delete from app_public.users where id = :alice;
select pg_temp.is(pg_temp.tables_holding(:'marker'), '{}'::text[],
  'after a DBA''s DELETE FROM users no table of any schema holds the marker');
select pg_temp.is((select count(*) from app_public.live_events where user_id = :alice), 0::bigint,
  'alice''s own live events are gone');
select pg_temp.is(
  (select count(*) from app_private.delivery_counters where user_id = :alice)
   + (select count(*) from app_private.stream_horizons where user_id = :alice),
  0::bigint, 'her delivery counter and stream horizon are gone (no foreign key: the cleanup trigger)');
select pg_temp.is(
  (select to_jsonb(d) - 'id' - 'deleted_at' from app_private.deleted_accounts d where former_user_id = :alice),
  jsonb_build_object('former_user_id', :alice, 'self_service', false),
  'what survives: one audit row with the former id, the time and who did it');

rollback to savepoint planted;

-- As the user, through the request role (what DELETE /me runs).
select pg_temp.act_as(:alice);
set local role :visitor;
delete from app_public.users where id = app_public.current_user_id();
reset role;
select pg_temp.as_dba();
select pg_temp.is(pg_temp.tables_holding(:'marker'), '{}'::text[],
  'after the user deleted their own account no table of any schema holds the marker');
select pg_temp.ok(
  (select self_service from app_private.deleted_accounts where former_user_id = :alice),
  'the audit row says the user did it');

rollback;
