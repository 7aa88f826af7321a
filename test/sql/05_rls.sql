-- plan: 8
-- Row-level security: as user A, a B<->C conversation does not exist.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :bob, :carol, 'private') returning id as bc \gset
update app_public.messages set content = 'private, edited' where id = :bc;
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :bob, :alice, 'for alice');

set local role :visitor;
select pg_temp.act_as(:alice);
select pg_temp.is((select count(*) from app_public.messages where id = :bc), 0::bigint,
  'A sees no message of the B-C conversation');
select pg_temp.is((select count(*) from app_public.messages), 1::bigint,
  'A sees exactly the one message she received');
select pg_temp.is((select count(*) from app_public.notifications where user_id <> :alice), 0::bigint,
  'A sees no one else''s notifications');
select pg_temp.is((select count(*) from app_public.message_history), 0::bigint,
  'A sees no history of messages she cannot see');
with updated as (update app_public.messages set content = 'hijacked' where id = :bc returning 1)
select pg_temp.is((select count(*) from updated), 0::bigint, 'A cannot update a B-C message');
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, content) values (%s, %s, %L)', :bob, :carol, 'forged'),
  '42501', 'A cannot send as B (RLS check, 42501)');
with deleted as (delete from app_public.users where id = :bob returning 1)
select pg_temp.is((select count(*) from deleted), 0::bigint, 'A cannot delete B''s account');
reset role;
select pg_temp.as_dba();
select pg_temp.is((select content from app_public.messages where id = :bc), 'private, edited',
  'the B-C message is unchanged');

rollback;
