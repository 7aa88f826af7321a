-- plan: 12
-- Integrity triggers and their SQLSTATEs (README, "Database rules").
\i test/sql/_assert.sql
begin;

insert into app_public.users (username) values ('i_alice'), ('i_bob'), ('i_carol');
select id as alice from app_public.users where username = 'i_alice' \gset
select id as bob from app_public.users where username = 'i_bob' \gset
select id as carol from app_public.users where username = 'i_carol' \gset
insert into app_public.messages (sender_id, receiver_id, content)
values (:alice, :bob, 'root') returning id as root \gset

select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, parent_message_id, content) values (%s, %s, %s, %L)',
         :carol, :bob, :root, 'intruding reply'),
  'SB001', 'a reply from outside the conversation raises SB001');
select pg_temp.throws(
  format('insert into app_public.messages (sender_id, receiver_id, parent_message_id, content) values (%s, %s, %s, %L)',
         :bob, :carol, :root, 'misdirected reply'),
  'SB001', 'a reply sent to a third user raises SB001');

insert into app_public.messages (sender_id, parent_message_id, content)
values (:bob, :root, 'reply without receiver') returning id as reply \gset
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
