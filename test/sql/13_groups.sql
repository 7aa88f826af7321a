-- plan: 20
-- Group conversations (migration 000020), from psql: who may send, what
-- each member sees, the fan-out, the periods, the derived positions.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_dave') returning id as dave \gset

-- A DBA makes a group and its members with plain INSERTs.
insert into app_public.conversations (kind, title) values ('group', 'dba group') returning id as g \gset
insert into app_public.conversation_members (conversation_id, user_id, role)
values (:g, :alice, 'owner'), (:g, :bob, 'member'), (:g, :carol, 'member');

-- A member's message, inserted by a DBA: numbered, and the whole fan-out.
insert into app_public.messages (sender_id, group_id, content) values (:alice, :g, 'first') returning id as m1, group_seq as s1 \gset
select pg_temp.is(:s1::bigint, 1::bigint, 'a group message takes the group''s next position');
select pg_temp.is((select array_agg(user_id order by user_id) from app_public.notifications where message_id = :m1),
  array(select unnest(array[:bob, :carol]::bigint[]) order by 1), 'every member but the sender is notified');
select pg_temp.is((select array_agg(user_id order by user_id) from app_public.live_events where :m1 = any (message_ids)),
  array(select unnest(array[:alice, :bob, :carol]::bigint[]) order by 1), 'message.created reaches every member, the sender included');

select pg_temp.throws(format('insert into app_public.messages (sender_id, group_id, content) values (%s, %s, %L)', :dave, :g, 'intruder'),
  'SB008', 'a non-member''s message, even from a DBA, raises SB008');
select pg_temp.throws(format('insert into app_public.messages (sender_id, group_id, group_seq, content) values (%s, %s, 99, %L)', :bob, :g, 'x'),
  'SB006', 'group_seq is the trigger''s to write (SB006)');
select pg_temp.throws(format('insert into app_public.messages (sender_id, receiver_id, group_id, content) values (%s, %s, %s, %L)', :bob, :carol, :g, 'x'),
  '23514', 'a message goes to a receiver or to a group, not both');
select pg_temp.throws(format('update app_public.messages set read = true where id = %s', :m1),
  '23514', 'a group message has no read flag: the read position is the member''s');
select pg_temp.throws(format('insert into app_public.messages (sender_id, parent_message_id, receiver_id, content) values (%s, %s, %s, %L)', :bob, :m1, :alice, 'astray'),
  'SB001', 'a reply to a group message cannot leave the group');
insert into app_public.messages (sender_id, parent_message_id, content) values (:bob, :m1, 'a reply') returning group_id as reply_group \gset
select pg_temp.is(:reply_group::bigint, :g::bigint, 'a reply with only a parent lands in the parent''s group');

-- Dave joins; carol leaves; what each sees, as the request role.
insert into app_public.conversation_members (conversation_id, user_id) values (:g, :dave);
select app_public.leave_group(:g, :carol);
insert into app_public.messages (sender_id, group_id, content) values (:alice, :g, 'after') returning id as m3 \gset
set local role :visitor;
select pg_temp.act_as(:dave);
select pg_temp.is((select array_agg(id order by id) from app_public.messages where group_id = :g), array[:m3]::bigint[],
  'dave, who joined later, sees only what came after');
select pg_temp.act_as(:carol);
select pg_temp.is((select count(*) from app_public.messages where group_id = :g), 2::bigint,
  'carol, who left, keeps the two messages of her time and not the later one');
select pg_temp.is((select count(*) from app_public.conversations where id = :g), 0::bigint, 'and no longer sees the group');
select pg_temp.throws(format('insert into app_public.conversation_members (conversation_id, user_id) values (%s, %s)', :g, :carol),
  '42501', 'she cannot add herself back (row-level security)');
select pg_temp.act_as(:bob);
with renamed as (update app_public.conversations set title = 'mine' where id = :g returning 1)
select pg_temp.is((select count(*) from renamed), 0::bigint, 'a member who does not manage the group cannot rename it');
select pg_temp.is((select count(*) from app_public.conversation_members where conversation_id = :g and left_seq is null), 3::bigint,
  'a member sees the group''s current members');
select pg_temp.act_as(:dave);
select pg_temp.is((select count(*) from app_public.messages m where m.id = :m1), 0::bigint, 'a non-reader cannot fetch an old message by id');
reset role;
select pg_temp.as_dba();

-- A DBA moves bob's read position: his notifications up to it are read.
select pg_temp.is((select count(*) > 0 from app_public.notifications n join app_public.messages m on m.id = n.message_id
                    where n.user_id = :bob and m.group_id = :g and n.read_at is null), true, 'bob has unread group notifications');
update app_public.conversation_members set read_seq = (select last_seq from app_public.conversations where id = :g)
 where conversation_id = :g and user_id = :bob and left_seq is null;
select pg_temp.is((select count(*) from app_public.notifications n join app_public.messages m on m.id = n.message_id
                    where n.user_id = :bob and m.group_id = :g and n.read_at is null), 0::bigint,
  'moving the read position reads the notifications it passed, from psql too');

-- Derived values equal a recount.
select pg_temp.is((select last_seq from app_public.conversations where id = :g),
  (select max(group_seq) from app_public.messages where group_id = :g), 'the group''s last_seq is its newest message''s position');
select pg_temp.is((select left_seq from app_public.conversation_members where conversation_id = :g and user_id = :carol),
  2::bigint, 'carol''s period ended at the position of the last message before her leave');

rollback;
