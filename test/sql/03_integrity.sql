-- plan: 25
-- Integrity triggers and their SQLSTATEs (README, "Database rules").
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'root') returning id as root \gset

select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, parent_message_id, content) values (%s, %s, %s, %L)',
         :carol, :bob, :root, 'intruding reply'),
  'SB001', 'a reply from outside the conversation raises SB001');
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, parent_message_id, content) values (%s, %s, %s, %L)',
         :bob, :carol, :root, 'misdirected reply'),
  'SB001', 'a reply sent to a third user raises SB001');

insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :root, 'reply without receiver') returning id as reply \gset
select pg_temp.ok(
  (select receiver_id = :alice and thread_root_id = :root and depth = 1 from app_public.messages where id = :reply),
  'a reply with only a parent goes to the other participant, in the parent''s thread');
select pg_temp.is(
  (select reply_count from app_public.messages where id = :root), 1, 'the parent''s reply_count counts it');

select pg_temp.throws(format('update app_public.messages set sender_id = %s where id = %s', :carol, :root),
  'SB002', 'changing sender_id raises SB002');
select pg_temp.throws(format('update app_public.messages set sent_at = sent_at - interval ''1 day'' where id = %s', :root),
  'SB002', 'changing sent_at raises SB002');
select pg_temp.throws(format('update app_public.messages set parent_message_id = null where id = %s', :reply),
  'SB002', 'changing parent_message_id raises SB002');
select pg_temp.ok(
  pg_temp.error_of(format('update app_public.messages set receiver_id = %s where id = %s', :carol, :root))
    like 'SB002: column receiver_id %',
  'SB002 names the column that changed');

-- A reply to a message that does not exist says so (not SB001).
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, parent_message_id, content) values (%s, %s, %s, %L)',
         :alice, :bob, 999999999999, 'reply to nothing'),
  'SB005', 'a reply to a missing parent raises SB005');

-- Derived columns are the triggers' to write, even for a superuser.
select pg_temp.throws(format('update app_public.messages set edited = true where id = %s', :root),
  'SB006', 'setting edited directly raises SB006');
select pg_temp.throws(format('update app_public.messages set edited_at = now() where id = %s', :root),
  'SB006', 'setting edited_at directly raises SB006');
select pg_temp.throws(format('update app_public.messages set read_at = now() where id = %s', :root),
  'SB006', 'setting read_at directly raises SB006');
select pg_temp.throws(format('update app_public.messages set reply_count = 42 where id = %s', :root),
  'SB006', 'setting reply_count directly raises SB006');
select pg_temp.throws(format('update app_public.messages set thread_root_id = %s where id = %s', :reply, :reply),
  'SB006', 'setting thread_root_id directly raises SB006');
select pg_temp.throws(format('update app_public.messages set depth = 5 where id = %s', :reply),
  'SB006', 'setting depth directly raises SB006');
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, content, reply_count) values (%s, %s, %L, 3)', :alice, :bob, 'forged count'),
  'SB006', 'inserting a reply_count raises SB006');
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, content, edited, edited_at) values (%s, %s, %L, true, now())', :alice, :bob, 'forged edit'),
  'SB006', 'inserting edited raises SB006');
select pg_temp.ok(
  pg_temp.error_of(format('update app_public.messages set reply_count = 42 where id = %s', :root))
    like 'SB006: column reply_count %',
  'SB006 names the column');

-- Edit times are the moment of each edit: three edits in one transaction
-- get three strictly increasing times, and the message's edited_at is the
-- newest version's.
update app_public.messages set content = 'v2' where id = :reply;
update app_public.messages set content = 'v3' where id = :reply;
update app_public.messages set content = 'v4' where id = :reply;
select pg_temp.ok(
  (select bool_and(edited_at > prev) from (
     select edited_at, lag(edited_at) over (order by id) as prev
       from app_public.message_history where message_id = :reply) h where prev is not null),
  'versions of one message are strictly ordered in time, even within one transaction');
select pg_temp.ok(
  (select m.edited_at = (select max(edited_at) from app_public.message_history where message_id = :reply)
     from app_public.messages m where m.id = :reply),
  'the message''s edited_at is its newest version''s time');

-- Who may change what, through the request role.
set local role :visitor;
select pg_temp.act_as(:bob);
select pg_temp.throws(format('update app_public.messages set content = %L where id = %s', 'not mine', :root),
  'SB003', 'the receiver cannot edit the content (SB003)');
select pg_temp.act_as(:alice);
select pg_temp.throws(format('update app_public.messages set read = true where id = %s', :root),
  'SB004', 'the sender cannot mark it read (SB004)');
select pg_temp.act_as(:bob);
update app_public.messages set read = true where id = :root;
reset role;
select pg_temp.as_dba();

select pg_temp.ok(
  (select read and read_at is not null from app_public.messages where id = :root),
  'setting read stamps read_at');
select pg_temp.ok(
  (select read_at is not null from app_public.notifications where message_id = :root),
  'reading a message marks its notification read');

update app_public.messages set read = false where id = :root;
select pg_temp.ok(
  (select not read and read_at is null from app_public.messages where id = :root),
  'clearing read clears read_at');

rollback;
