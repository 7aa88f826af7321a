-- plan: 13
-- Unsend, reports and moderation (migration 000021), from psql: the rules
-- hold for a DBA and for the request role alike.
\i test/sql/_assert.sql

\i test/sql/_people.sql
insert into app_public.messages (sender_id, receiver_id, content) values (:alice, :bob, 'marker-quokka first') returning id as m \gset
update app_public.messages set content = 'marker-quokka second' where id = :m;
insert into app_public.messages (sender_id, parent_message_id, content) values (:bob, :m, 'a reply') returning id as r \gset

set local role :visitor;
select pg_temp.act_as(:bob);
insert into app_public.reports (message_id, reporter_id, reason) values (:m, :bob, 'spam') returning id as rep \gset
select pg_temp.throws(format('insert into app_public.reports (message_id, reporter_id, reason) values (%s, %s, %L)', :m, :alice, 'x'),
  '42501', 'nobody reports on someone else''s behalf');
select pg_temp.throws(format('update app_public.messages set deleted_at = now() where id = %s', :m),
  'SB003', 'the receiver cannot unsend (SB003)');
select pg_temp.act_as(:carol);
select pg_temp.throws(format('insert into app_public.reports (message_id, reporter_id, reason) values (%s, %s, %L)', :m, :carol, 'x'),
  '42501', 'a stranger cannot report what they cannot read');
select pg_temp.throws(format('select app_public.resolve_report(%s, %L)', :rep, 'dismiss'),
  '42501', 'a user who does not moderate cannot resolve a report');
select pg_temp.act_as(:alice);
select pg_temp.is((select count(*) from app_public.reports), 0::bigint, 'the reported user does not see the report');
update app_public.messages set deleted_at = now() where id = :m;
select pg_temp.throws(format('update app_public.messages set content = %L where id = %s', 'resurrected', :m),
  'SB002', 'a tombstone''s words never come back');
reset role;
select pg_temp.as_dba();

select pg_temp.is((select row(content, deleted_at is not null, reply_count) from app_public.messages where id = :m)::text,
  row(null::text, true, 1)::text, 'a tombstone: no content, deletedAt, its reply still counted');
select pg_temp.is((select parent_message_id from app_public.messages where id = :r), :m::bigint, 'the reply stays attached');
select pg_temp.is((select count(*) from app_public.message_history where message_id = :m), 0::bigint, 'its history is gone');
select pg_temp.is((select content_snapshot from app_public.reports where id = :rep), null::text, 'and the report''s snapshot');
select pg_temp.is((select count(*) from app_public.live_events where type = 'message.deleted' and :m = any (message_ids)), 2::bigint,
  'message.deleted reached both participants');

-- A moderator's resolution, audited; suspension holds for psql too.
update app_public.users set is_moderator = true where id = :carol;
select pg_temp.act_as(:carol);
select (app_public.resolve_report(:rep, 'suspend_user')).status as resolved \gset
select pg_temp.as_dba();
select pg_temp.is((select action || ' on ' || (target_user_id = :alice)::text from app_private.moderation_actions where report_id = :rep),
  'suspend_user on true', 'the resolution is audited');
select pg_temp.throws(format('insert into app_public.messages (sender_id, receiver_id, content) values (%s, %s, %L)', :alice, :bob, 'x'),
  'SB011', 'a suspended user cannot send, from psql either (SB011)');

rollback;
