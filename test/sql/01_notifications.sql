-- plan: 7
-- AFTER INSERT on messages creates the receiver's notification
-- (trigger _500_notify_receiver, statement-level with a transition table).
\i test/sql/_assert.sql

insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_alice'), (nextval('run_ids'), :'run' || '_bob');
select id as alice from app_public.users where username = :'run' || '_alice' \gset
select id as bob from app_public.users where username = :'run' || '_bob' \gset

insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'hello bob') returning id as msg \gset

select pg_temp.is(
  (select count(*) from app_public.notifications where message_id = :msg),
  1::bigint, 'a new message creates one notification');
select pg_temp.ok(
  (select user_id = :bob and kind = 'message' and read_at is null
     from app_public.notifications where message_id = :msg),
  'the notification is the receiver''s, unread, of kind message');

insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :alice, 'note to self') returning id as self_msg \gset
select pg_temp.is(
  (select count(*) from app_public.notifications where message_id = :self_msg),
  0::bigint, 'a message to oneself creates no notification');

insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :msg, 'hi alice') returning id as reply \gset
select pg_temp.ok(
  (select user_id = :alice and kind = 'reply' from app_public.notifications where message_id = :reply),
  'a reply notifies the other participant with kind reply');

-- Bulk: one statement, 10,000 messages, 10,000 notifications.
select count(*) as before from app_public.notifications where user_id = :bob \gset
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
select nextval('run_ids'), :alice, :bob, 'bulk ' || g from generate_series(1, 10000) g;
select pg_temp.is(
  (select count(*) from app_public.notifications where user_id = :bob) - :before,
  10000::bigint, 'a 10,000-row INSERT … SELECT creates 10,000 notifications');

-- The trigger is statement-level (bit 0 of tgtype clear) and uses a
-- transition table, so that bulk insert ran one INSERT into notifications.
select pg_temp.ok(
  (select tgtype & 1 = 0 and tgnewtable is not null from pg_trigger
    where tgrelid = 'app_public.messages'::regclass and tgname = '_500_notify_receiver'),
  'the notification trigger is FOR EACH STATEMENT with a transition table');

-- A rolled-back message leaves no notification behind.
savepoint before_rollback;
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :bob, :alice, 'never sent');
rollback to savepoint before_rollback;
select pg_temp.is(
  (select count(*) from app_public.messages m where m.sender_id = :bob and m.content = 'never sent'),
  0::bigint, 'a rolled-back message leaves neither message nor notification');

rollback;
