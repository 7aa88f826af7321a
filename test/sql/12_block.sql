-- plan: 9
-- Blocking (migration 000019): a blocked user's words do not reach the one
-- who blocked them, whoever writes them (the API, psql, an import): SB007.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :bob, :alice, 'before the block') returning id as before \gset

-- Alice blocks bob, as the API does: the request role, alice as the caller.
set local role :visitor;
select pg_temp.act_as(:alice);
insert into app_public.blocks (blocker_id, blocked_id) values (:alice, :bob);
select pg_temp.throws(format('insert into app_public.blocks (blocker_id, blocked_id) values (%s, %s)', :carol, :bob),
  '42501', 'nobody blocks on someone else''s behalf (row-level security)');
select pg_temp.act_as(:bob);
select pg_temp.is((select count(*) from app_public.blocks), 0::bigint, 'bob does not see that alice blocked him');
select pg_temp.throws(format('insert into app_public.messages (sender_id, receiver_id, content) values (%s, %s, %L)', :bob, :alice, 'hello?'),
  'SB007', 'bob''s message to alice raises SB007');
select pg_temp.throws(format('update app_public.messages set content = %L where id = %s', 'changed', :before),
  'SB007', 'and so does an edit of what he sent her');
select pg_temp.is((select count(*) from app_public.messages where id = :before), 1::bigint, 'the conversation so far stays readable to him');
reset role;
select pg_temp.as_dba();

-- A DBA is held to the rule too, in a multi-row import beside an allowed row.
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, content) values (%s, %s, %L), (%s, %s, %L)',
         :bob, :carol, 'allowed', :bob, :alice, 'refused'),
  'SB007', 'a multi-row INSERT with one blocked row raises SB007, and stores neither');
select pg_temp.is((select count(*) from app_public.messages where sender_id = :bob and content in ('allowed', 'refused')), 0::bigint,
  'the import stored nothing');
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'the blocker may still write');
select pg_temp.is((select count(*) from app_public.messages where sender_id = :alice and receiver_id = :bob), 1::bigint,
  'the blocker''s message to bob is stored');
select pg_temp.throws(format('insert into app_public.blocks (blocker_id, blocked_id) values (%s, %s)', :carol, :carol),
  '23514', 'nobody blocks themselves (blocks_not_self)');

rollback;
