-- plan: 6
-- An import of threads from another system: one multi-row INSERT, and one
-- COPY, in which later rows reply to earlier ones of the same statement.
-- The trigger functions are VOLATILE, so each row's triggers see the rows
-- its statement wrote before it; the derived columns come out as they do
-- when the same rows are sent one at a time.
--
-- The imported rows carry their own ids (as an import does), negative ones
-- so they can never meet the identity sequence's, which this script does
-- not advance.
\i test/sql/_assert.sql

\i test/sql/_people.sql

-- One at a time: the reference.
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'root') returning id as r \gset
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :r, 'child') returning id as c \gset
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :alice, :c, 'grandchild');
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :alice, :r, 'second child');
create temp table reference on commit drop as
  select content, depth, reply_count, thread_root_id = :r as in_root_thread, user_low, user_high, search
    from app_public.messages where thread_root_id = :r;

-- The same thread, one statement, parents listed before their replies.
insert into app_public.messages (id, sender_id, receiver_id, parent_message_id, content) overriding system value
values (-9101, :alice, :bob, null, 'root'),
       (-9102, :bob, null, -9101, 'child'),
       (-9103, :alice, null, -9102, 'grandchild'),
       (-9104, :alice, null, -9101, 'second child');
select pg_temp.is(
  (select count(*) from (
     select content, depth, reply_count, thread_root_id = -9101, user_low, user_high, search
       from app_public.messages where id between -9104 and -9101
     except select * from reference) d),
  0::bigint, 'a multi-row INSERT: thread root, depth, reply counts, receivers and search as one row at a time');
select pg_temp.is(
  (select count(*) from app_public.notifications where message_id between -9104 and -9101),
  4::bigint, 'each imported message notified its receiver once');

-- The same again through COPY, between two imported users (COPY data
-- takes no psql variables, so they too have fixed negative ids).
insert into app_public.users (id, username) overriding system value
values (-9001, :'run' || '_imp_a'), (-9002, :'run' || '_imp_b');
copy app_public.messages (id, sender_id, receiver_id, parent_message_id, content) from stdin;
-9201	-9002	-9001	\N	root
-9202	-9001	\N	-9201	child
-9203	-9002	\N	-9202	grandchild
-9204	-9002	\N	-9201	second child
\.
select pg_temp.is(
  (select count(*) from (
     select content, depth, reply_count, thread_root_id = -9201, search, receiver_id = case when sender_id = -9001 then -9002 else -9001 end
       from app_public.messages where id between -9204 and -9201
     except select content, depth, reply_count, in_root_thread, search, true from reference) d),
  0::bigint, 'a COPY: the same derived columns (receivers filled in from the parents)');
select pg_temp.is(
  (select reply_count from app_public.messages where id = -9201), 2,
  'the root counts both replies the COPY made to it');

-- A reply listed before its parent is still refused, by the same rule.
select pg_temp.throws($$
  insert into app_public.messages (id, sender_id, receiver_id, parent_message_id, content) overriding system value
  values (-9302, $$ || :bob || $$, null, -9301, 'reply first'), (-9301, $$ || :alice || $$, $$ || :bob || $$, null, 'parent second')
$$, 'SB005', 'a reply before its parent in the statement: SB005 (the parent does not exist yet)');
select pg_temp.ok(
  (select count(*) = 0 from app_public.messages where id in (-9301, -9302)),
  'and nothing of that statement was written');

rollback;
