--! Previous: sha1:5481b8ce7ad75cd001a87e156de9fb6387b38431
--! Hash: sha1:cbcd877a1613ae7e5feb50bf6a98211eebb7594a
--! Message: Rules at volume: triggers planned for their real size, derived columns refused (SB006), missing parent (SB005), edit times at the moment of the edit

--------------------------------------------------------------------------------
-- The rules at volume and in a DBA's hands.
--
-- 1. Statement-level triggers that read a transition table together with
--    another table no longer rely on PL/pgSQL's cached plan: that plan is
--    made the first time the statement runs in a session, for the row count
--    of that first transition table, and reused for every later one. A
--    mark-read of 10,000 rows after a 1-row update in the same session ran a
--    nested loop between the old and new transition tables for 139 s. Each
--    such trigger now handles the one-row (or one-parent) case with a
--    statement whose only plan is a primary-key lookup, and plans the bulk
--    case per statement (EXECUTE), for its real size.
-- 2. Derived columns belong to the triggers: edited, edited_at, read_at,
--    reply_count, thread_root_id and depth cannot be written by any client
--    (SB006), superusers included; the triggers keep maintaining them.
-- 3. Precise errors: a missing parent has its own SQLSTATE (SB005), SB002
--    names the column, every custom error carries a HINT saying what to do.
-- 4. History times are the moment of the edit (clock_timestamp(), taken
--    after the row lock), not the transaction's start: versions of one
--    message are strictly ordered and the message's edited_at is its newest
--    version's time.
--
-- Custom SQLSTATEs after this migration (README, "Database rules"):
--   SB001  a reply is not in its parent's conversation          -> 422
--   SB002  sender, receiver, parent or sent_at was changed       -> 422
--   SB003  only the sender may change a message's content        -> 403
--   SB004  only the receiver may change a message's read flag    -> 403
--   SB005  the parent message does not exist                     -> 404
--   SB006  a derived column was written directly                 -> 422
--------------------------------------------------------------------------------

-- Re-runnable (watch mode): everything below is create-or-replace or
-- dropped first.
drop trigger if exists _040_protect_derived_columns on app_public.messages;

--------------------------------------------------------------------------------
-- Derived columns: written by triggers only.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__protect_derived_columns() returns trigger
  language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  written text;
begin
  -- pg_trigger_depth() is 1 for a client's own statement; the reply-count
  -- trigger's UPDATE of a parent runs deeper and may write reply_count.
  if pg_trigger_depth() > 1 then
    return new;
  end if;
  if tg_op = 'INSERT' then
    written := case
      when new.edited then 'edited'
      when new.edited_at is not null then 'edited_at'
      when new.read_at is not null then 'read_at'
      when new.reply_count <> 0 then 'reply_count'
      when new.thread_root_id is not null then 'thread_root_id'
      when new.depth <> 0 then 'depth'
    end;
  else
    written := case
      when new.edited is distinct from old.edited then 'edited'
      when new.edited_at is distinct from old.edited_at then 'edited_at'
      when new.read_at is distinct from old.read_at then 'read_at'
      when new.reply_count is distinct from old.reply_count then 'reply_count'
      when new.thread_root_id is distinct from old.thread_root_id then 'thread_root_id'
      when new.depth is distinct from old.depth then 'depth'
    end;
  end if;
  if written is not null then
    raise exception 'column % of message % is maintained by triggers and cannot be written directly', written, coalesce(old.id, new.id)
      using errcode = 'SB006',
            hint = 'Change content (edited and edited_at follow) or read (read_at follows); reply_count, thread_root_id and depth follow from parent_message_id.';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__protect_derived_columns() is
  'Raises SB006 when a statement writes edited, edited_at, read_at, reply_count, thread_root_id or depth itself; trigger-issued updates (pg_trigger_depth() > 1) pass.';
create trigger _040_protect_derived_columns
  before insert or update on app_public.messages
  for each row execute function app_private.tg_messages__protect_derived_columns();
comment on trigger _040_protect_derived_columns on app_public.messages is
  'Integrity: derived columns are the triggers'' to write (SB006). First of the BEFORE triggers, so it sees what the client wrote.';

--------------------------------------------------------------------------------
-- Immutable columns: SB002 names the one that changed. thread_root_id and
-- depth are derived columns now (SB006, above).
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__forbid_immutable_change() returns trigger
  language plpgsql immutable set search_path = pg_catalog, pg_temp
as $$
declare
  changed text := case
    when new.sender_id is distinct from old.sender_id then 'sender_id'
    when new.receiver_id is distinct from old.receiver_id then 'receiver_id'
    when new.parent_message_id is distinct from old.parent_message_id then 'parent_message_id'
    else 'sent_at'
  end;
begin
  raise exception 'column % of message % cannot change after it is sent', changed, old.id
    using errcode = 'SB002',
          hint = 'Send a new message instead; only content (by the sender) and read (by the receiver) may change.';
end;
$$;
comment on function app_private.tg_messages__forbid_immutable_change() is
  'Raises SB002 naming the changed column; the trigger''s WHEN clause decides when it runs.';
drop trigger if exists _050_forbid_immutable_change on app_public.messages;
create trigger _050_forbid_immutable_change
  before update on app_public.messages
  for each row when (
    old.sender_id is distinct from new.sender_id
    or old.receiver_id is distinct from new.receiver_id
    or old.parent_message_id is distinct from new.parent_message_id
    or old.sent_at is distinct from new.sent_at)
  execute function app_private.tg_messages__forbid_immutable_change();
comment on trigger _050_forbid_immutable_change on app_public.messages is
  'Integrity: sender, receiver, parent and sent_at are fixed at insert (SB002).';

--------------------------------------------------------------------------------
-- Who may change what: messages that say what to do.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__check_participant_role() returns trigger
  language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  actor bigint := app_public.current_user_id();
begin
  if actor is null then
    return new;
  end if;
  if old.content is distinct from new.content and actor <> old.sender_id then
    raise exception 'only the sender may edit message %', old.id
      using errcode = 'SB003', hint = 'Act as the sender (signalbox.user_id), or reply to the message instead.';
  end if;
  if old.read is distinct from new.read and actor <> old.receiver_id then
    raise exception 'only the receiver may mark message % read', old.id
      using errcode = 'SB004', hint = 'Act as the receiver (signalbox.user_id) to change the read flag.';
  end if;
  return new;
end;
$$;

--------------------------------------------------------------------------------
-- Replies: a missing parent is its own error.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__check_reply_conversation() returns trigger
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if not found then
    raise exception 'parent message % does not exist', new.parent_message_id
      using errcode = 'SB005', hint = 'Reply to an existing message, or leave parent_message_id null to start a thread.';
  end if;
  if least(new.sender_id, new.receiver_id) is distinct from parent.user_low
     or greatest(new.sender_id, new.receiver_id) is distinct from parent.user_high then
    raise exception 'a reply must be in the same conversation as message %', new.parent_message_id
      using errcode = 'SB001',
            hint = 'A reply goes between the parent''s two participants: omit receiver_id and it is filled in.';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__check_reply_conversation() is
  'Raises SB005 when the parent does not exist, SB001 unless the reply''s sender and receiver are its parent''s two participants.';
comment on trigger _200_check_reply_conversation on app_public.messages is
  'Integrity: a reply''s parent exists (SB005) and replies never cross conversations (SB001).';

--------------------------------------------------------------------------------
-- History at the moment of the edit.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__record_history() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  -- BEFORE ROW triggers run once the row is locked, so two edits of one
  -- message take their times one after the other: strictly ordered.
  -- now() would be each transaction's start, in any order.
  edited_time timestamptz := clock_timestamp();
begin
  insert into app_public.message_history (message_id, old_content, edited_at, edited_by)
  values (old.id, old.content, edited_time, app_public.current_user_id());
  new.edited := true;
  new.edited_at := edited_time;
  return new;
end;
$$;
comment on function app_private.tg_messages__record_history() is
  'Copies the old content into message_history (edited_by = current_user_id(), NULL in psql) and sets edited/edited_at, both at clock_timestamp(): the message''s edited_at is its newest version''s time.';

--------------------------------------------------------------------------------
-- Reply counts: one parent by primary key, or planned per statement.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__maintain_reply_count() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  replies bigint;
  lowest_parent bigint;
  highest_parent bigint;
  direction integer := case when tg_op = 'INSERT' then 1 else -1 end;
begin
  -- Only the transition table is read here: no join, no plan to go stale.
  if tg_op = 'INSERT' then
    select count(*), min(parent_message_id), max(parent_message_id)
      into replies, lowest_parent, highest_parent
      from new_messages where parent_message_id is not null;
  else
    select count(*), min(parent_message_id), max(parent_message_id)
      into replies, lowest_parent, highest_parent
      from old_messages where parent_message_id is not null;
  end if;

  if replies = 0 then
    return null; -- no replies among the rows: most sends
  elsif lowest_parent = highest_parent then
    -- One parent (every API reply): a primary-key update. A parent deleted
    -- in the same statement is gone already; no row matches.
    update app_public.messages
       set reply_count = greatest(reply_count + direction * replies, 0)
     where id = lowest_parent;
  else
    -- Many parents: planned for this statement's real size (EXECUTE), not
    -- the size of whichever statement ran first in this session.
    execute format($sql$
      update app_public.messages p
         set reply_count = greatest(p.reply_count + %s * c.n, 0)
        from (select parent_message_id, count(*) as n from %I
               where parent_message_id is not null group by parent_message_id) c
       where p.id = c.parent_message_id
    $sql$, direction, case when tg_op = 'INSERT' then 'new_messages' else 'old_messages' end);
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__maintain_reply_count() is
  'Adds inserted replies to (and subtracts deleted replies from) their parents'' reply_count: a primary-key update for one parent, else one UPDATE planned per statement.';

--------------------------------------------------------------------------------
-- Reading a message reads its notification: no join between the old and new
-- transition tables (a read message whose notification is unread is exactly
-- what needs marking), and a plan made for the statement's real size.
--------------------------------------------------------------------------------

create or replace function app_private.tg_messages__read_notifications() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  read_rows bigint;
  only_id bigint;
  only_read_at timestamptz;
begin
  select count(*), min(id), min(read_at) into read_rows, only_id, only_read_at
    from new_messages where read;
  if read_rows = 0 then
    return null; -- edits and un-reads: nothing to mark
  elsif read_rows = 1 then
    -- One message (the API's mark-read): a lookup by message id.
    update app_public.notifications
       set read_at = only_read_at
     where message_id = only_id and read_at is null;
  else
    execute $sql$
      update app_public.notifications n
         set read_at = nm.read_at
        from new_messages nm
       where n.message_id = nm.id
         and nm.read
         and n.read_at is null
    $sql$;
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__read_notifications() is
  'Marks the unread notifications of messages that are read after the statement as read (at the message''s read_at): one lookup for one message, else one UPDATE planned per statement.';
drop trigger if exists _700_read_notifications on app_public.messages;
create trigger _700_read_notifications
  after update on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__read_notifications();
comment on trigger _700_read_notifications on app_public.messages is
  'Reading a message marks its notification read.';
