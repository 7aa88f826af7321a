-- plan: 9
-- The conversation page in one statement (app_public.conversation_page):
-- it sets the request role and the caller itself, and its query runs under
-- row-level security like every other view.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.messages (sender_id, receiver_id, content)
  values (:alice, :bob, 'one'), (:bob, :alice, 'two'), (:alice, :bob, 'three');

-- Row-level security applies inside, shown without DDL (this script takes
-- no lock stronger than ROW EXCLUSIVE, so it may run beside production
-- traffic): with row_security off, a query that RLS would filter raises
-- 42501 instead of running unfiltered; the connecting role (which bypasses
-- RLS) would not.
set local row_security = off;
select pg_temp.ok(
  pg_temp.error_of($$select app_public.conversation_page('$$ || :'visitor' || $$', $$ || :bob || $$, $$ || :alice || $$, null, 10)$$)
    ~ '^42501: .*row-level security',
  'the page''s query is subject to row-level security (with row_security off it refuses to run)');
reset row_security;
reset role;
-- And it runs as the role it is given: one without SELECT on the table is refused.
select pg_temp.ok(
  pg_temp.error_of($$select app_public.conversation_page('pg_monitor', $$ || :bob || $$, $$ || :alice || $$, null, 10)$$) ~ '^42501:',
  'it runs its query as the role it is given (pg_monitor, with no right to messages, is refused)');
reset role;

select app_public.conversation_page(:'visitor', :bob, :alice, null, 10)::json as page \gset
select pg_temp.is(current_user::text, :'visitor', 'the statement left the request role set (transaction-local: gone at COMMIT)');
reset role;
select pg_temp.as_dba();
select pg_temp.is(
  (select array_agg(m->>'content') from json_array_elements(:'page'::json->'messages') m),
  array['three', 'two', 'one'],
  'newest first');
select pg_temp.is(:'page'::json->>'nextCursor', null, 'one page: no cursor');

select app_public.conversation_page(:'visitor', :bob, :alice, null, 1)::json as first \gset
reset role;
select pg_temp.is((:'first'::json->'nextCursor')::text, (select max(id)::text from app_public.messages where content = 'three' and sender_id = :alice),
  'a page of 1: the cursor is its last id');

select pg_temp.is(app_public.conversation_page(:'visitor', :carol, :alice, null, 10), '{"messages":[],"nextCursor":null}',
  'a stranger to the conversation gets an empty page of her own');
reset role;
select pg_temp.is(app_public.conversation_page(:'visitor', :bob, -1, null, 10), null, 'an unknown partner: null (404)');
reset role;

-- The runtime role is the visitor (migration 000018): it may call the
-- page, naming the caller as it names the caller of every request
-- (signalbox.user_id); no other role may.
select pg_temp.ok(has_function_privilege(:'visitor', 'app_public.conversation_page(text, bigint, bigint, bigint, int)', 'execute')
                  and not has_function_privilege('pg_monitor', 'app_public.conversation_page(text, bigint, bigint, bigint, int)', 'execute'),
  'the request role may call it, and no role outside it (EXECUTE revoked from PUBLIC)');

rollback;
