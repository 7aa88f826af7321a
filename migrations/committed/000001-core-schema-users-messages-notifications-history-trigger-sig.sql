--! Previous: -
--! Hash: sha1:0d1cc2a40602c5f89ce1e2b0c58b73b9be4694e9
--! Message: Core schema: users, messages, notifications, history, trigger signals, RLS

--------------------------------------------------------------------------------
-- signalbox core schema.
--
-- PostgreSQL does the work a Django app would do with signals and managers:
-- triggers create notifications, keep edit history, stamp read times and keep
-- threads consistent; foreign keys cascade account deletion; row-level
-- security scopes every read and write to the user set for the transaction.
--
-- Custom SQLSTATEs raised here (the API maps each to an HTTP status):
--   SB001  a reply is not in its parent's conversation          -> 422
--   SB002  an immutable column (sender, receiver, parent, sent_at,
--          thread position) was changed                          -> 422
--   SB003  only the sender may change a message's content        -> 403
--   SB004  only the receiver may change a message's read flag    -> 403
--------------------------------------------------------------------------------

drop schema if exists app_public cascade;
drop schema if exists app_private cascade;

-- Functions are not executable by everyone unless granted below.
alter default privileges revoke execute on functions from public;

create schema app_public;
comment on schema app_public is
  'What API requests may read, under row-level security: users, messages, notifications, message history.';
create schema app_private;
comment on schema app_private is
  'Secrets and internals the request role cannot touch: password hashes, sessions, the deletion audit, trigger functions.';

grant usage on schema app_public to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Who is asking.
--------------------------------------------------------------------------------

create function app_public.current_user_id() returns bigint
  language sql stable parallel safe
as $$
  select nullif(current_setting('signalbox.user_id', true), '')::bigint;
$$;
comment on function app_public.current_user_id() is
  'The signalbox user the current transaction acts for (set with set_config(''signalbox.user_id'', …, true)); NULL for a DBA in psql.';
grant execute on function app_public.current_user_id() to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Users.
--------------------------------------------------------------------------------

create table app_public.users (
  id bigint primary key generated always as identity,
  -- Stored lower-case, so uniqueness is case-insensitive without citext.
  username text not null
    constraint users_username_format check (username ~ '^[a-z0-9_]{3,32}$'),
  display_name text
    constraint users_display_name_length check (char_length(display_name) between 1 and 100),
  created_at timestamptz not null default now(),
  constraint users_username_key unique (username)
);
comment on table app_public.users is 'A signalbox account. Deleting a row deletes everything that belongs to it.';
comment on column app_public.users.username is 'Unique handle, 3-32 of [a-z0-9_], stored lower-case (case-insensitive).';
comment on constraint users_username_key on app_public.users is 'Usernames are unique (they are stored lower-case, so case-insensitively).';
comment on column app_public.users.display_name is 'Optional name shown instead of the username.';

alter table app_public.users enable row level security;
-- The user directory is visible to every signed-in user (lookup by username).
create policy select_all on app_public.users for select using (true);
-- A user may delete (only) their own account.
create policy delete_self on app_public.users for delete using (id = app_public.current_user_id());
grant select on app_public.users to :DATABASE_VISITOR;
grant delete on app_public.users to :DATABASE_VISITOR;
comment on policy select_all on app_public.users is 'Usernames and display names are public to signed-in users.';
comment on policy delete_self on app_public.users is 'Only the account holder may delete the account.';

--------------------------------------------------------------------------------
-- Private account data.
--------------------------------------------------------------------------------

create table app_private.user_secrets (
  user_id bigint primary key references app_public.users on delete cascade,
  -- argon2id PHC string, computed in Node; never a plain password.
  password_hash text not null,
  updated_at timestamptz not null default now()
);
comment on table app_private.user_secrets is 'Password hashes (argon2id, hashed in Node), one row per user.';

create table app_private.sessions (
  id bigint primary key generated always as identity,
  -- SHA-256 of the bearer token; the token itself is never stored.
  token_hash bytea not null,
  user_id bigint not null references app_public.users on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint sessions_token_hash_key unique (token_hash),
  constraint sessions_expiry_after_creation check (expires_at > created_at)
);
create index sessions_user_id_idx on app_private.sessions (user_id);
comment on constraint sessions_token_hash_key on app_private.sessions is 'Looks a session up by the hash of its bearer token.';
comment on table app_private.sessions is 'Bearer-token sessions: the SHA-256 of the token, its user and expiry. Logout deletes the row; deleting the user cascades.';
comment on index app_private.sessions_user_id_idx is 'Serves the cascade when a user is deleted.';

create table app_private.deleted_accounts (
  id bigint primary key generated always as identity,
  -- The former id only: no username, no content, nothing personal.
  former_user_id bigint not null,
  deleted_at timestamptz not null default now(),
  -- true when the user deleted themself through the API, false for a DBA.
  self_service boolean not null
);
comment on table app_private.deleted_accounts is 'Audit of account deletions without personal data: former id, time, and whether the user did it.';

--------------------------------------------------------------------------------
-- Messages.
--------------------------------------------------------------------------------

create table app_public.messages (
  id bigint primary key generated always as identity,
  sender_id bigint not null references app_public.users on delete cascade,
  receiver_id bigint not null references app_public.users on delete cascade,
  parent_message_id bigint references app_public.messages on delete cascade,
  content text not null
    constraint messages_content_length check (char_length(btrim(content)) between 1 and 10000),
  sent_at timestamptz not null default now(),
  edited boolean not null default false,
  edited_at timestamptz,
  read boolean not null default false,
  read_at timestamptz,
  -- Maintained by triggers: the thread's top message and this one's depth.
  thread_root_id bigint not null references app_public.messages on delete cascade,
  depth integer not null default 0
    constraint messages_depth_limit check (depth between 0 and 1000),
  reply_count integer not null default 0
    constraint messages_reply_count_non_negative check (reply_count >= 0),
  -- The conversation key: the pair of participants, smaller id first.
  user_low bigint not null generated always as (least(sender_id, receiver_id)) stored,
  user_high bigint not null generated always as (greatest(sender_id, receiver_id)) stored,
  constraint messages_edited_has_time check (edited = (edited_at is not null)),
  constraint messages_read_has_time check (read = (read_at is not null))
);
comment on table app_public.messages is 'A message from sender to receiver, optionally a reply to a parent in the same conversation.';
comment on column app_public.messages.sent_at is 'When it was sent (the seed''s "timestamp"); immutable.';
comment on column app_public.messages.edited is 'Set by the history trigger when the content changes.';
comment on column app_public.messages.read is 'Set by the receiver; read_at is stamped by a trigger.';
comment on column app_public.messages.parent_message_id is 'The message this one replies to; must be in the same conversation.';
comment on column app_public.messages.thread_root_id is 'The top message of the thread (itself for a top-level message); set by a trigger.';
comment on column app_public.messages.depth is 'Distance from the thread root (0 for the root); at most 1000, set by a trigger.';
comment on column app_public.messages.reply_count is 'Number of direct replies; maintained by a trigger.';
comment on column app_public.messages.user_low is 'Conversation key, lower participant id.';
comment on column app_public.messages.user_high is 'Conversation key, higher participant id.';

-- Every cascading foreign key is indexed, so deleting a user or a message
-- never scans the table.
create index messages_sender_id_idx on app_public.messages (sender_id);
create index messages_receiver_id_idx on app_public.messages (receiver_id);
create index messages_parent_message_id_idx on app_public.messages (parent_message_id, id)
  where parent_message_id is not null;
create index messages_thread_root_id_idx on app_public.messages (thread_root_id);
-- One conversation, newest first.
create index messages_conversation_idx on app_public.messages (user_low, user_high, id desc);
-- The unread inbox: only unread rows, in the inbox's order, with the small
-- columns it shows. The query must say the literal `read = false`.
create index messages_unread_inbox_idx on app_public.messages (receiver_id, id desc)
  include (sender_id, parent_message_id, sent_at)
  where read = false;
comment on index app_public.messages_sender_id_idx is 'Serves the cascade from users and the conversation list.';
comment on index app_public.messages_receiver_id_idx is 'Serves the cascade from users and the conversation list.';
comment on index app_public.messages_parent_message_id_idx is 'Children of a message, in sending order: the recursive thread query and the cascade.';
comment on index app_public.messages_thread_root_id_idx is 'Serves the cascade from a deleted root.';
comment on index app_public.messages_conversation_idx is 'Messages between two users, newest first (cursor pagination).';
comment on index app_public.messages_unread_inbox_idx is 'Partial index of unread messages per receiver, newest first: the unread inbox and unread counts.';

alter table app_public.messages enable row level security;
create policy select_participant on app_public.messages for select
  using (sender_id = app_public.current_user_id() or receiver_id = app_public.current_user_id());
create policy insert_as_sender on app_public.messages for insert
  with check (sender_id = app_public.current_user_id());
create policy update_participant on app_public.messages for update
  using (sender_id = app_public.current_user_id() or receiver_id = app_public.current_user_id());
comment on policy select_participant on app_public.messages is 'A user sees only messages they sent or received.';
comment on policy insert_as_sender on app_public.messages is 'A user sends only as themself.';
comment on policy update_participant on app_public.messages is 'Participants may update; triggers decide which columns each may change.';
grant select on app_public.messages to :DATABASE_VISITOR;
grant insert (sender_id, receiver_id, parent_message_id, content) on app_public.messages to :DATABASE_VISITOR;
grant update (content, read) on app_public.messages to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Notifications.
--------------------------------------------------------------------------------

create table app_public.notifications (
  id bigint primary key generated always as identity,
  user_id bigint not null references app_public.users on delete cascade,
  message_id bigint not null references app_public.messages on delete cascade,
  kind text not null constraint notifications_kind check (kind in ('message', 'reply')),
  created_at timestamptz not null default now(),
  read_at timestamptz,
  constraint notifications_message_user_key unique (message_id, user_id)
);
comment on table app_public.notifications is 'A notice to user_id about a message they received; created by a trigger on messages.';
comment on column app_public.notifications.kind is '''message'' for a new conversation message, ''reply'' for a reply.';
comment on column app_public.notifications.read_at is 'When it was read; set by the user or when the message is read.';
create index notifications_user_id_idx on app_public.notifications (user_id, id desc);
create index notifications_unread_idx on app_public.notifications (user_id, id desc) where read_at is null;
comment on index app_public.notifications_user_id_idx is 'A user''s notifications newest first; serves the cascade from users.';
comment on index app_public.notifications_unread_idx is 'Unread notifications and their count.';
comment on constraint notifications_message_user_key on app_public.notifications is 'One notification per message and user; also serves the cascade from messages.';

alter table app_public.notifications enable row level security;
create policy own on app_public.notifications for all
  using (user_id = app_public.current_user_id());
comment on policy own on app_public.notifications is 'A user sees and marks only their own notifications.';
grant select on app_public.notifications to :DATABASE_VISITOR;
grant update (read_at) on app_public.notifications to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Edit history.
--------------------------------------------------------------------------------

create table app_public.message_history (
  id bigint primary key generated always as identity,
  message_id bigint not null references app_public.messages on delete cascade,
  old_content text not null,
  edited_at timestamptz not null default now(),
  edited_by bigint references app_public.users on delete set null
);
comment on table app_public.message_history is 'Earlier versions of a message''s content, written by the BEFORE UPDATE trigger.';
comment on column app_public.message_history.old_content is 'The content before this edit.';
comment on column app_public.message_history.edited_at is 'When the content was replaced.';
comment on column app_public.message_history.edited_by is 'Who replaced it (NULL: a DBA, or a since-deleted user).';
create index message_history_message_id_idx on app_public.message_history (message_id, id desc);
create index message_history_edited_by_idx on app_public.message_history (edited_by);
comment on index app_public.message_history_message_id_idx is 'A message''s versions newest first; serves the cascade from messages.';
comment on index app_public.message_history_edited_by_idx is 'Serves ON DELETE SET NULL from users.';

alter table app_public.message_history enable row level security;
create policy visible_message on app_public.message_history for select
  using (exists (select 1 from app_public.messages m where m.id = message_id));
comment on policy visible_message on app_public.message_history is 'History is visible exactly when its message is (the subquery runs under the messages policy).';
grant select on app_public.message_history to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Triggers on messages, in firing order. BEFORE triggers shape the row;
-- AFTER statement triggers use transition tables so a bulk statement costs
-- one statement per side effect, not one per row.
--------------------------------------------------------------------------------

-- A reply with no receiver goes to the other participant of its parent.
create function app_private.tg_messages__default_reply_receiver() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if found and new.sender_id in (parent.sender_id, parent.receiver_id) then
    new.receiver_id := case when new.sender_id = parent.sender_id
                            then parent.receiver_id else parent.sender_id end;
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__default_reply_receiver() is
  'Fills receiver_id of a reply from its parent''s conversation when it is omitted.';
create trigger _100_default_reply_receiver
  before insert on app_public.messages
  for each row when (new.parent_message_id is not null and new.receiver_id is null)
  execute function app_private.tg_messages__default_reply_receiver();
comment on trigger _100_default_reply_receiver on app_public.messages is
  'A reply needs only parent_message_id: the receiver is the parent''s other participant.';

-- A reply stays in its parent's conversation.
create function app_private.tg_messages__check_reply_conversation() returns trigger
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if not found
     or least(new.sender_id, new.receiver_id) is distinct from parent.user_low
     or greatest(new.sender_id, new.receiver_id) is distinct from parent.user_high then
    raise exception 'a reply must be in the same conversation as message %', new.parent_message_id
      using errcode = 'SB001';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__check_reply_conversation() is
  'Raises SB001 unless the reply''s sender and receiver are its parent''s two participants.';
create trigger _200_check_reply_conversation
  before insert on app_public.messages
  for each row when (new.parent_message_id is not null)
  execute function app_private.tg_messages__check_reply_conversation();
comment on trigger _200_check_reply_conversation on app_public.messages is
  'Integrity: replies never cross conversations (SB001).';

-- Thread root and depth, so a thread can be found and bounded without a walk.
create function app_private.tg_messages__set_thread_position() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if new.parent_message_id is null then
    new.thread_root_id := new.id;
    new.depth := 0;
  else
    select m.thread_root_id, m.depth + 1 into new.thread_root_id, new.depth
      from app_public.messages m where m.id = new.parent_message_id;
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__set_thread_position() is
  'Sets thread_root_id and depth from the parent (the row itself for a top-level message).';
create trigger _300_set_thread_position
  before insert on app_public.messages
  for each row execute function app_private.tg_messages__set_thread_position();
comment on trigger _300_set_thread_position on app_public.messages is
  'Maintains thread_root_id and depth (depth is limited to 1000 by a check constraint).';

-- Stamp read_at whenever the read flag is set or cleared.
create function app_private.tg_messages__stamp_read_at() returns trigger
  language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
begin
  new.read_at := case when new.read then now() end;
  return new;
end;
$$;
comment on function app_private.tg_messages__stamp_read_at() is
  'Sets read_at to now() when read becomes true, NULL when it becomes false.';
create trigger _400_stamp_read_at_on_insert
  before insert on app_public.messages
  for each row when (new.read)
  execute function app_private.tg_messages__stamp_read_at();
create trigger _400_stamp_read_at
  before update on app_public.messages
  for each row when (old.read is distinct from new.read)
  execute function app_private.tg_messages__stamp_read_at();
comment on trigger _400_stamp_read_at_on_insert on app_public.messages is 'A message inserted as read gets read_at.';
comment on trigger _400_stamp_read_at on app_public.messages is 'Setting the read flag stamps read_at.';

-- After insert: the receiver's notification (the post_save signal).
create function app_private.tg_messages__notify_receiver() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  announced bigint;
begin
  with created as (
    insert into app_public.notifications (user_id, message_id, kind)
    select n.receiver_id, n.id,
           case when n.parent_message_id is null then 'message' else 'reply' end
      from new_messages n
     where n.sender_id <> n.receiver_id
     order by n.id
    returning user_id, id
  )
  -- ids only; delivered on commit, so a rolled-back insert announces nothing.
  select count(pg_notify('signalbox_notifications',
                         json_build_object('userId', user_id, 'notificationId', max_id)::text))
    from (select user_id, max(id) as max_id from created group by user_id) per_user
    into announced;
  return null;
end;
$$;
comment on function app_private.tg_messages__notify_receiver() is
  'Inserts one notification per new message whose receiver is not its sender (one INSERT per statement), then pg_notify(''signalbox_notifications'', {userId, notificationId}) once per receiver.';
create trigger _500_notify_receiver
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__notify_receiver();
comment on trigger _500_notify_receiver on app_public.messages is
  'The post_save signal: new messages notify their receivers, statement-level so bulk inserts stay cheap.';

-- Keep parents' reply counts right for inserts and deletes (bulk included).
create function app_private.tg_messages__maintain_reply_count() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    update app_public.messages p
       set reply_count = p.reply_count + c.n
      from (select parent_message_id, count(*) as n from new_messages
             where parent_message_id is not null group by parent_message_id) c
     where p.id = c.parent_message_id;
  else
    -- Parents deleted in the same statement are already gone; no row matches.
    update app_public.messages p
       set reply_count = greatest(p.reply_count - c.n, 0)
      from (select parent_message_id, count(*) as n from old_messages
             where parent_message_id is not null group by parent_message_id) c
     where p.id = c.parent_message_id;
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__maintain_reply_count() is
  'Adds inserted replies to (and subtracts deleted replies from) their parents'' reply_count, one UPDATE per statement.';
create trigger _600_reply_count_on_insert
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__maintain_reply_count();
create trigger _600_reply_count_on_delete
  after delete on app_public.messages
  referencing old table as old_messages
  for each statement execute function app_private.tg_messages__maintain_reply_count();
comment on trigger _600_reply_count_on_insert on app_public.messages is 'New replies raise their parent''s reply_count.';
comment on trigger _600_reply_count_on_delete on app_public.messages is 'Deleted replies lower their parent''s reply_count.';

-- What cannot change after insert.
create function app_private.tg_messages__forbid_immutable_change() returns trigger
  language plpgsql immutable set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception 'sender_id, receiver_id, parent_message_id, sent_at and the thread position of message % cannot change', old.id
    using errcode = 'SB002';
end;
$$;
comment on function app_private.tg_messages__forbid_immutable_change() is
  'Raises SB002; the trigger''s WHEN clause decides when it runs.';
create trigger _050_forbid_immutable_change
  before update on app_public.messages
  for each row when (
    old.sender_id is distinct from new.sender_id
    or old.receiver_id is distinct from new.receiver_id
    or old.parent_message_id is distinct from new.parent_message_id
    or old.sent_at is distinct from new.sent_at
    or old.thread_root_id is distinct from new.thread_root_id
    or old.depth is distinct from new.depth)
  execute function app_private.tg_messages__forbid_immutable_change();
comment on trigger _050_forbid_immutable_change on app_public.messages is
  'Integrity: sender, receiver, parent, sent_at and thread position are fixed at insert (SB002).';

-- Who may change what: the sender edits, the receiver reads. A DBA (no user
-- set for the transaction) may do either.
create function app_private.tg_messages__check_participant_role() returns trigger
  language plpgsql stable set search_path = pg_catalog, pg_temp
as $$
declare
  actor bigint := app_public.current_user_id();
begin
  if actor is null then
    return new;
  end if;
  if old.content is distinct from new.content and actor <> old.sender_id then
    raise exception 'only the sender may edit message %', old.id using errcode = 'SB003';
  end if;
  if old.read is distinct from new.read and actor <> old.receiver_id then
    raise exception 'only the receiver may mark message % read', old.id using errcode = 'SB004';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__check_participant_role() is
  'Raises SB003 when a non-sender changes content, SB004 when a non-receiver changes read; no check without a current user.';
create trigger _060_check_participant_role
  before update on app_public.messages
  for each row when (old.content is distinct from new.content or old.read is distinct from new.read)
  execute function app_private.tg_messages__check_participant_role();
comment on trigger _060_check_participant_role on app_public.messages is
  'Authorization second wall: only the sender edits (SB003), only the receiver marks read (SB004).';

-- The pre_save signal: keep the old version, mark the message edited.
create function app_private.tg_messages__record_history() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  insert into app_public.message_history (message_id, old_content, edited_at, edited_by)
  values (old.id, old.content, now(), app_public.current_user_id());
  new.edited := true;
  new.edited_at := now();
  return new;
end;
$$;
comment on function app_private.tg_messages__record_history() is
  'Copies the old content into message_history (edited_by = current_user_id(), NULL in psql) and sets edited/edited_at.';
create trigger _200_record_history
  before update on app_public.messages
  for each row when (old.content is distinct from new.content)
  execute function app_private.tg_messages__record_history();
comment on trigger _200_record_history on app_public.messages is
  'Every content change, API or psql, single or bulk, keeps the previous version.';

-- Reading a message reads its notification.
create function app_private.tg_messages__read_notifications() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  update app_public.notifications n
     set read_at = nm.read_at
    from new_messages nm
    join old_messages om on om.id = nm.id
   where n.message_id = nm.id
     and nm.read
     and not om.read
     and n.read_at is null;
  return null;
end;
$$;
comment on function app_private.tg_messages__read_notifications() is
  'Marks the notifications of messages that are now read as read, one UPDATE per statement.';
create trigger _700_read_notifications
  after update on app_public.messages
  referencing old table as old_messages new table as new_messages
  for each statement execute function app_private.tg_messages__read_notifications();
comment on trigger _700_read_notifications on app_public.messages is
  'Reading a message marks its notification read.';

-- Tell every instance which conversations changed (cache eviction).
create function app_private.tg_messages__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  announced bigint;
begin
  -- One NOTIFY per conversation touched; identical payloads in a transaction
  -- are folded by PostgreSQL.
  if tg_op = 'DELETE' then
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high))::text))
      from (select distinct user_low, user_high from old_messages) pairs into announced;
  else
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high))::text))
      from (select distinct user_low, user_high from new_messages) pairs into announced;
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_change() is
  'pg_notify(''signalbox_conversations'', {users: [low, high]}) once per conversation a statement changed.';
create trigger _900_announce_insert
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__announce_change();
create trigger _900_announce_update
  after update on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__announce_change();
create trigger _900_announce_delete
  after delete on app_public.messages
  referencing old table as old_messages
  for each statement execute function app_private.tg_messages__announce_change();
comment on trigger _900_announce_insert on app_public.messages is 'Announces changed conversations (cache eviction on every instance).';
comment on trigger _900_announce_update on app_public.messages is 'Announces changed conversations (cache eviction on every instance).';
comment on trigger _900_announce_delete on app_public.messages is 'Announces changed conversations (cache eviction on every instance).';

--------------------------------------------------------------------------------
-- Triggers on users: the post_delete signal. Foreign keys cascade the data;
-- these record and announce the deletion.
--------------------------------------------------------------------------------

create function app_private.tg_users__audit_deletion() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  insert into app_private.deleted_accounts (former_user_id, self_service)
  values (old.id, old.id is not distinct from app_public.current_user_id());
  return null;
end;
$$;
comment on function app_private.tg_users__audit_deletion() is
  'Writes an app_private.deleted_accounts row (former id, time, self-service flag; no personal data).';
create trigger _100_audit_deletion
  after delete on app_public.users
  for each row execute function app_private.tg_users__audit_deletion();
comment on trigger _100_audit_deletion on app_public.users is 'Records every account deletion without personal data.';

create function app_private.tg_users__announce_deletion() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('signalbox_users', json_build_object('deletedUserId', old.id)::text);
  return null;
end;
$$;
comment on function app_private.tg_users__announce_deletion() is
  'pg_notify(''signalbox_users'', {deletedUserId}) so caches and live streams drop the user at once.';
create trigger _900_announce_deletion
  after delete on app_public.users
  for each row execute function app_private.tg_users__announce_deletion();
comment on trigger _900_announce_deletion on app_public.users is 'Announces the deletion to every instance on commit.';
