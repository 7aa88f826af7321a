-- plan: 7
-- An account deletion reaches the people who talked with it (migration
-- 000022), from psql: a DBA's DELETE tells the direct partner and the
-- group's current members, by id only, and nobody else.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_dave') returning id as dave \gset
insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_erin') returning id as erin \gset

-- Alice talked with Bob; Alice, Carol and Dave are in a group; Erin left it.
insert into app_public.messages (sender_id, receiver_id, content) values (:alice, :bob, 'marker-okapi to bob');
insert into app_public.conversations (kind, title) values ('group', 'deletion group') returning id as g \gset
insert into app_public.conversation_members (conversation_id, user_id, role)
values (:g, :alice, 'owner'), (:g, :carol, 'member'), (:g, :dave, 'member'), (:g, :erin, 'member');
insert into app_public.messages (sender_id, group_id, content) values (:alice, :g, 'marker-okapi to the group');
select app_public.leave_group(:g, :erin);

delete from app_public.users where id = :alice;

select pg_temp.is((select array_agg(user_id order by user_id) from app_public.live_events where type = 'account.deleted' and account_id = :alice),
  array(select unnest(array[:bob, :carol, :dave]::bigint[]) order by 1),
  'account.deleted reaches the direct partner and the group''s current members, once each');
select pg_temp.is((select count(*) from app_public.live_events where type = 'account.deleted' and user_id = :erin), 0::bigint,
  'a member who had left is not told');
select pg_temp.is((select bool_and(message_count = 0 and message_ids = '{}') from app_public.live_events where type = 'account.deleted'),
  true, 'the event names the account and no message');
select pg_temp.is((select e.seq from app_public.live_events e where e.user_id = :bob and e.type = 'account.deleted'),
  (select last_seq from app_private.delivery_counters where user_id = :bob),
  'it takes the partner''s next delivery seq (the stream''s cursor)');
select pg_temp.throws(format('insert into app_public.live_events (user_id, seq, type, message_ids, message_count) values (%s, 999999, %L, %L, 0)', :bob, 'account.deleted', '{}'),
  '23514', 'an account.deleted event must name the account');

-- Two partners deleted in one statement: neither is told of the other.
insert into app_public.messages (sender_id, receiver_id, content) values (:carol, :dave, 'carol to dave');
delete from app_public.users where id in (:carol, :dave);
select pg_temp.is((select count(*) from app_public.live_events where user_id in (:carol, :dave)), 0::bigint,
  'accounts deleted together leave no events for each other');
select pg_temp.is((select count(*) from app_private.delivery_counters where user_id in (:carol, :dave)), 0::bigint,
  'nor delivery counters');
