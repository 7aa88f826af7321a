-- plan: 9
-- BEFORE UPDATE on messages keeps the old content and marks the message
-- edited (trigger _200_record_history, WHEN content changes).
\i test/sql/_assert.sql

insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_alice'), (nextval('run_ids'), :'run' || '_bob');
select id as alice from app_public.users where username = :'run' || '_alice' \gset
select id as bob from app_public.users where username = :'run' || '_bob' \gset
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'first version') returning id as msg \gset

update app_public.messages set content = 'second version' where id = :msg;
select pg_temp.is(
  (select old_content from app_public.message_history where message_id = :msg),
  'first version', 'an edit copies the old content into message_history');
select pg_temp.ok(
  (select edited and edited_at is not null from app_public.messages where id = :msg),
  'an edit sets edited and edited_at');
select pg_temp.ok(
  (select edited_by is null from app_public.message_history where message_id = :msg),
  'an edit from psql (no user set) records edited_by NULL');

update app_public.messages set content = 'second version' where id = :msg;
select pg_temp.is(
  (select count(*) from app_public.message_history where message_id = :msg),
  1::bigint, 'an UPDATE to the same content writes no history');

update app_public.messages set read = true where id = :msg;
select pg_temp.is(
  (select count(*) from app_public.message_history where message_id = :msg),
  1::bigint, 'an UPDATE of the read flag writes no history');

-- Edited by the sender through the request role: edited_by is the sender.
set local role :visitor;
select pg_temp.act_as(:alice);
update app_public.messages set content = 'third version' where id = :msg;
reset role;
select pg_temp.as_dba();
select pg_temp.is(
  (select edited_by from app_public.message_history where message_id = :msg order by id desc limit 1),
  :alice::bigint, 'an edit as a user records that user as edited_by');
select pg_temp.is(
  (select array_agg(old_content order by id) from app_public.message_history where message_id = :msg),
  array['first version', 'second version'], 'every earlier version is kept, in order');

-- Bulk: one UPDATE over 1,000 rows writes 1,000 history rows.
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
select nextval('run_ids'), :alice, :bob, 'bulk ' || g from generate_series(1, 1000) g;
select count(*) as before from app_public.message_history h
  join app_public.messages m on m.id = h.message_id where m.sender_id = :alice \gset
update app_public.messages set content = content || ' (edited)' where sender_id = :alice and content like 'bulk %';
select pg_temp.is(
  (select count(*) from app_public.message_history h
     join app_public.messages m on m.id = h.message_id where m.sender_id = :alice) - :before,
  1000::bigint, 'one UPDATE over 1,000 rows writes 1,000 history rows');
select pg_temp.is(
  (select count(*) from app_public.messages where sender_id = :alice and content like 'bulk %' and edited),
  1000::bigint, 'all 1,000 rows are marked edited');

rollback;
