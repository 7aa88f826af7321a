--! Previous: sha1:cc90436c778136bf678d195826a33902fcee8254
--! Hash: sha1:b54f42025154be07883832d80b3ee03c3ac62a00
--! Message: POST /conversations/:userId/read in one statement: app_public.read_conversation sets the caller and the request's settings and answers what its triggers recorded; a moved group read position reads its notifications (trigger)

-- A write in one statement: POST /conversations/:userId/read.
--
-- A writing request was five round trips: BEGIN; the role, the caller, the
-- lock timeout, the instance and the request id; the UPDATE; reading back
-- which users' views its triggers changed (signalbox.touched, for the
-- writer's own cache eviction); COMMIT. Like the one-statement views
-- (migrations 000013, 000023), this function sets all of it for its own
-- statement, runs the UPDATE as the request role (row-level security as
-- before), and answers what the triggers recorded with the result, so the
-- request is one round trip. The triggers have fired by then: a statement
-- inside a PL/pgSQL function fires its AFTER triggers when it ends, not
-- when the function does.

create function app_public.read_conversation(
  visitor text,
  caller bigint,
  other bigint,
  lock_timeout_ms int,
  instance text,
  request_id text
) returns text
  language plpgsql volatile
as $$
declare
  marked bigint;
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true),
          set_config('lock_timeout', lock_timeout_ms || 'ms', true),
          set_config('signalbox.instance', instance, true),
          set_config('application_name', 'signalbox ' || request_id, true);
  if not exists (select 1 from app_public.users where id = other) then
    return null;
  end if;
  -- The partial unread index serves it: the literal `read = false`.
  with m as (
    update app_public.messages set read = true
     where receiver_id = caller and sender_id = other and read = false
    returning 1
  )
  select count(*) into marked from m;
  return json_build_object('marked', marked,
                           'touched', nullif(current_setting('signalbox.touched', true), ''),
                           'revoked', nullif(current_setting('signalbox.revoked', true), ''))::text;
end;
$$;
comment on function app_public.read_conversation(text, bigint, bigint, int, text, text) is
  'POST /conversations/:userId/read in one statement: sets the request role, the caller and the request''s settings, marks what `other` sent the caller read, and answers {marked, touched, revoked} (what its triggers recorded, for the writer''s cache eviction); null when `other` does not exist.';
revoke all on function app_public.read_conversation(text, bigint, bigint, int, text, text) from public;
grant execute on function app_public.read_conversation(text, bigint, bigint, int, text, text) to :DATABASE_VISITOR;

-- Reading a group reads its notifications up to the read position, in the
-- database, whoever moves the position (the API, psql): what
-- _430_read_notifications on messages does for a direct message's read
-- flag. The API did it in its own query before; a DBA's UPDATE of read_seq
-- left the notifications unread.
create function app_private.tg_conversation_members__read_notifications() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
begin
  update app_public.notifications n
     set read_at = now()
    from new_members nm
    join old_members om on om.id = nm.id
    join app_public.messages m on m.group_id = nm.conversation_id
   where nm.read_seq > om.read_seq
     and m.group_seq > om.read_seq and m.group_seq <= nm.read_seq
     and n.message_id = m.id and n.user_id = nm.user_id and n.read_at is null;
  return null;
end;
$$;
comment on function app_private.tg_conversation_members__read_notifications() is
  'Marks read the notifications of the group messages a moved read position passed (messages_group_position_idx over the range, then the notification by message and user).';
create trigger _400_read_notifications
  after update on app_public.conversation_members
  referencing old table as old_members new table as new_members
  for each statement execute function app_private.tg_conversation_members__read_notifications();
comment on trigger _400_read_notifications on app_public.conversation_members is
  'A read position that moved reads the notifications of the messages it passed, as a direct message''s read flag does.';
