-- plan: 8
-- Deleting a user removes everything that belongs to them (ON DELETE
-- CASCADE) and writes one audit row without personal data.
\i test/sql/_assert.sql

\i test/sql/_people.sql

insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :alice, :bob, 'a to b') returning id as ab \gset
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :bob, :ab, 'b replies');
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :carol, :alice, 'c to a');
insert into app_public.messages (id, sender_id, receiver_id, content) overriding system value
values (nextval('run_ids'), :bob, :carol, 'b to c') returning id as bc \gset
insert into app_public.messages (id, sender_id, parent_message_id, content) overriding system value
values (nextval('run_ids'), :carol, :bc, 'c replies to b');
update app_public.messages set content = 'a to b, edited' where id = :ab;
-- A history row of another conversation that names alice as its editor:
-- deleting alice must SET NULL there, not delete it.
insert into app_public.message_history (message_id, old_content, edited_by) values (:bc, 'b to c, v0', :alice);
insert into app_private.sessions (token_hash, user_id, expires_at) values ('\x01', :alice, now() + interval '1 day');

select count(*) as audit_before from app_private.deleted_accounts \gset
delete from app_public.users where id = :alice;

select pg_temp.is(
  (select count(*) from app_public.messages where :alice in (sender_id, receiver_id)),
  0::bigint, 'no message sent or received by the deleted user remains');
select pg_temp.is(
  (select count(*) from app_public.messages m where m.parent_message_id = :ab or m.thread_root_id = :ab),
  0::bigint, 'replies in the deleted user''s threads are gone');
select pg_temp.is(
  (select count(*) from app_public.notifications n
    where n.user_id = :alice
       or not exists (select 1 from app_public.messages m where m.id = n.message_id)),
  0::bigint, 'no notification for or about the deleted user remains');
select pg_temp.is(
  (select count(*) from app_public.message_history h
    where not exists (select 1 from app_public.messages m where m.id = h.message_id) or h.edited_by = :alice),
  0::bigint, 'no history of deleted messages remains, and no history names the user');
select pg_temp.is(
  (select count(*) from app_private.sessions where user_id = :alice),
  0::bigint, 'the user''s sessions are gone');
select pg_temp.is(
  (select count(*) from app_public.messages where user_low = least(:bob, :carol) and user_high = greatest(:bob, :carol)),
  2::bigint, 'other users'' conversations are untouched');
select pg_temp.ok(
  (select edited_by is null from app_public.message_history h join app_public.messages m on m.id = h.message_id where m.id = :bc),
  'history of other conversations survives with edited_by set NULL');
select pg_temp.ok(
  (select count(*) = :audit_before + 1 and bool_and(former_user_id = :alice or id <= :audit_before)
     from app_private.deleted_accounts),
  'exactly one audit row records the deletion');

rollback;
