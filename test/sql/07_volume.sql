-- plan: 10
-- The rules at volume, in ONE session, small statements first: PL/pgSQL
-- caches a trigger statement's plan the first time it runs in a session,
-- so a plan made for one row must not be reused for 20,000 (a mark-read of
-- 10,050 rows after a 1-row update took 139 s that way), nor the other way
-- round. Every bulk statement here runs under a 10 s statement_timeout.
\i test/sql/_assert.sql

insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_alice'), (nextval('run_ids'), :'run' || '_bob');
select id as alice from app_public.users where username = :'run' || '_alice' \gset
select id as bob from app_public.users where username = :'run' || '_bob' \gset

-- Small first: every trigger's statements run (and are planned) for one row.
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'small') returning id as small \gset
update app_public.messages set read = true where id = :small;
update app_public.messages set content = 'small, edited' where id = :small;
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :small, 'small reply') returning id as small_reply \gset
delete from app_public.messages where id = :small_reply;
select pg_temp.ok(
  (select read and edited and reply_count = 0 from app_public.messages where id = :small),
  'one-row statements: read, edited, reply counted and uncounted');

set local statement_timeout = '10s';

insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
select nextval('run_ids'), :alice, :bob, 'bulk ' || g from generate_series(1, 20000) g;
select pg_temp.is(
  (select count(*) from app_public.notifications n join app_public.messages m on m.id = n.message_id
    where m.sender_id = :alice and m.content like 'bulk %'),
  20000::bigint, '20,000-row INSERT … SELECT: 20,000 notifications');

update app_public.messages set read = true where receiver_id = :bob and sender_id = :alice and not read;
select pg_temp.is(
  (select count(*) from app_public.notifications where user_id = :bob and read_at is null),
  0::bigint, '20,000-row mark-read after a 1-row one, same session: every notification read');

update app_public.messages set content = content || ' (edited)' where sender_id = :alice and content like 'bulk %';
select pg_temp.is(
  (select count(*) from app_public.message_history h join app_public.messages m on m.id = h.message_id
    where m.sender_id = :alice and m.content like 'bulk %'),
  20000::bigint, '20,000-row content edit: 20,000 history rows');

-- 20,000 replies to 20,000 different parents: the many-parents path.
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
select nextval('run_ids'), :bob, m.id, 'bulk reply' from app_public.messages m
 where m.sender_id = :alice and m.content like 'bulk %';
select pg_temp.is(
  (select count(*) from app_public.messages where sender_id = :alice and content like 'bulk %' and reply_count = 1),
  20000::bigint, '20,000 replies to 20,000 parents: each parent counts one');

delete from app_public.messages where sender_id = :bob and content = 'bulk reply';
select pg_temp.is(
  (select count(*) from app_public.messages where sender_id = :alice and reply_count <> 0),
  0::bigint, 'deleting them uncounts every one');

-- Small after bulk: the plans are not stuck on the bulk shape either.
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :small, 'late reply');
select pg_temp.is((select reply_count from app_public.messages where id = :small), 1, 'a 1-row reply after bulk is counted');
update app_public.messages set read = false where id = :small;
update app_public.messages set read = true where id = :small;
select pg_temp.ok(
  (select read_at is not null from app_public.notifications where message_id = :small),
  'a 1-row mark-read after bulk reads its notification');

delete from app_public.users where id = :alice;
select pg_temp.is(
  (select count(*) from app_public.messages where :alice in (sender_id, receiver_id)),
  0::bigint, 'deleting the user who owns 40,000 messages and replies removes them');
select pg_temp.is(
  (select count(*) from app_public.notifications where user_id = :bob),
  0::bigint, 'and every notification about them');

rollback;
