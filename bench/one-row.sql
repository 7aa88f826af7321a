-- One-row statements through the live-event triggers: 2,000 replies to one
-- parent (each bumps its reply_count), 2,000 mark-reads, 2,000 edits, each
-- timed, in ONE psql session. Run on a freshly migrated database:
--   psql "$URL" -f bench/one-row.sql
\set QUIET on
insert into app_public.users (username) values ('m_a'), ('m_b');
select id as a from app_public.users where username = 'm_a' \gset
select id as b from app_public.users where username = 'm_b' \gset
insert into app_public.messages (sender_id, receiver_id, content) select :a, :b, 'seed ' || g from generate_series(1, 4000) g;
select max(id) as p from app_public.messages \gset
select set_config('m.b', :'b', false), set_config('m.p', :'p', false) \gset
\timing on
-- 2,000 replies to one parent (each bumps its reply_count: a one-row UPDATE)
do $$ begin for i in 1..2000 loop insert into app_public.messages (sender_id, parent_message_id, content) values (current_setting('m.b')::bigint, current_setting('m.p')::bigint, 'r ' || i); end loop; end $$;
-- 2,000 one-row mark-reads
do $$ declare r record; begin for r in select id from app_public.messages where content like 'seed %' order by id limit 2000 loop update app_public.messages set read = true where id = r.id; end loop; end $$;
-- 2,000 one-row edits
do $$ declare r record; begin for r in select id from app_public.messages where content like 'seed %' order by id desc limit 2000 loop update app_public.messages set content = 'edited' where id = r.id; end loop; end $$;
