--! Previous: sha1:15d2c2d2de3699a44f76e7d5c79973ebbf434ac6
--! Hash: sha1:c8ab6534536b1d67a3b0f3d675c0d5a33ecc7b36
--! Message: groups: conversations with a kind, membership periods, group messages numbered in commit order, fan-out in one statement

--------------------------------------------------------------------------------
-- Group conversations (docs/groups.md). A conversation is first-class: a row
-- of app_public.conversations with a kind. A direct conversation is a pair
-- of users (user_low, user_high), which every direct message already
-- carries as its key; a group has a title and members.
--
-- What the upgrade locks (measured on 1,000,000 messages, docs/groups.md):
-- ALTER TABLE takes ACCESS EXCLUSIVE on messages for the whole migration
-- (one transaction). No message row is rewritten: the new columns are null
-- for direct messages (a metadata change), the new check constraint is one
-- scan, the two rebuilt partial indexes one scan each, and the direct
-- conversations are one index-only pass over the conversation index.
--
-- Membership is kept as periods: a row per stretch of membership, from the
-- group's message position when the member joined (joined_seq) to its
-- position when they left (left_seq, null while a member). A member sees
-- the group's messages sent while they were a member, and keeps them after
-- leaving; they see nothing sent before they joined or after they left,
-- and a rejoin opens a new period. One policy says so (select_reader on
-- messages).
--
-- Positions, not ids: a group's messages are numbered by the group's own
-- counter (conversations.last_seq), taken under the group row's lock, so a
-- message's number is in commit order for its group; a leave takes the
-- same lock, so every message is numbered either before or after a leave,
-- never "sent before, committed after".
--
-- Lock order (README "Lock order", extended): the group row is taken first
-- by a send (before the message row exists), by an add (before the member
-- row exists) and by leave_group (before the member row); a send then takes
-- its members' users rows (FOR KEY SHARE, in user-id order: where a direct
-- send's foreign-key check takes its receiver's), then, as before, the
-- parent and the delivery counters in user-id order. An account deletion
-- takes its users row first and no group row, except the delete of a group
-- whose last member it was (nobody else can be writing to it).
--------------------------------------------------------------------------------

create table app_public.conversations (
  id bigint primary key generated always as identity,
  kind text not null,
  title text,
  -- Foreign keys to users and the pair indexes are added after the
  -- backfill below: one validating join and one index build, instead of
  -- two key checks and three index insertions per backfilled row.
  user_low bigint,
  user_high bigint,
  created_at timestamptz not null default now(),
  last_seq bigint not null default 0,
  constraint conversations_kind check (kind in ('direct', 'group')),
  constraint conversations_shape check (case kind
    when 'direct' then title is null and user_low is not null and user_high is not null and user_low <= user_high
    else user_low is null and user_high is null and title is not null end),
  constraint conversations_title_length check (char_length(btrim(title)) between 1 and 100),
  constraint conversations_last_seq_non_negative check (last_seq >= 0)
);
comment on table app_public.conversations is
  'A conversation: direct (two users, user_low <= user_high: the key every direct message carries) or group (a title and members). Direct ones are opened by the first message between the pair and go with either account; a group goes when its last member leaves.';
comment on column app_public.conversations.last_seq is
  'A group''s message counter: the position of its newest message (messages.group_seq), taken under this row''s lock, so positions are in commit order. 0 for direct conversations.';

create table app_public.conversation_members (
  id bigint primary key generated always as identity,
  conversation_id bigint not null references app_public.conversations on delete cascade,
  user_id bigint not null references app_public.users on delete cascade,
  role text not null default 'member',
  joined_at timestamptz not null default now(),
  joined_seq bigint not null default 0,
  left_at timestamptz,
  left_seq bigint,
  read_seq bigint not null default 0,
  constraint conversation_members_role check (role in ('owner', 'member')),
  constraint conversation_members_left_together check ((left_at is null) = (left_seq is null)),
  constraint conversation_members_period check (left_seq >= joined_seq)
);
comment on table app_public.conversation_members is
  'Group membership as periods: one row per stretch of membership. A member reads the group''s messages with joined_seq < group_seq <= left_seq (left_seq null: still a member).';
comment on column app_public.conversation_members.joined_seq is 'The group''s last_seq when this period began (set by a trigger): messages after it are visible.';
comment on column app_public.conversation_members.left_seq is 'The group''s last_seq when this period ended (set by a trigger when left_at is set); null while a member.';
comment on column app_public.conversation_members.read_seq is 'The read position: the group_seq of the last message read. Unread = the period''s messages after it from others.';
comment on column app_public.conversation_members.role is 'owner (manages title and members) or member. A group whose owners have all gone is managed by its longest-standing member (app_public.group_manager).';
create unique index conversation_members_current_key on app_public.conversation_members (conversation_id, user_id) where left_seq is null;
comment on index app_public.conversation_members_current_key is 'One current membership per user and group; a group''s current members (fan-out, policies).';
create index conversation_members_user_id_idx on app_public.conversation_members (user_id, conversation_id);
comment on index app_public.conversation_members_user_id_idx is 'A user''s groups (the conversation list, the visibility policy); the cascade from users.';
create index conversation_members_conversation_id_idx on app_public.conversation_members (conversation_id, joined_seq);
comment on index app_public.conversation_members_conversation_id_idx is 'The cascade from conversations; a group''s members in joining order.';

--------------------------------------------------------------------------------
-- Messages: a group message has group_id and group_seq and no receiver.
--------------------------------------------------------------------------------

alter table app_public.messages
  alter column receiver_id drop not null,
  add column group_id bigint references app_public.conversations on delete cascade,
  add column group_seq bigint;
comment on column app_public.messages.receiver_id is 'The receiver of a direct message; null for a group message.';
comment on column app_public.messages.group_id is 'The group of a group message (a reply''s is its parent''s); null for a direct message. Fixed at insert.';
comment on column app_public.messages.group_seq is 'The message''s position in its group (in commit order), set by a trigger under the group row''s lock.';
alter table app_public.messages
  add constraint messages_direct_or_group check (
    (group_id is null and receiver_id is not null and group_seq is null)
    or (group_id is not null and receiver_id is null and group_seq is not null)),
  -- Group read state is the member's read position, never the flag.
  add constraint messages_group_never_read check (group_id is null or not read);
grant insert (group_id) on app_public.messages to :DATABASE_VISITOR;
comment on constraint messages_direct_or_group on app_public.messages is 'A message goes to a receiver or to a group, never both.';
comment on constraint messages_group_never_read on app_public.messages is 'A group message''s read state is each member''s read position (conversation_members.read_seq), not the read flag.';

create index messages_group_position_idx on app_public.messages (group_id, group_seq) include (sender_id) where group_id is not null;
comment on index app_public.messages_group_position_idx is
  'A group''s messages by position: the group page walks it backwards from the cursor, unread counts count past the read position (index-only); the cascade from a deleted group.';

-- A group message's user_low and user_high are its sender (least/greatest
-- ignore the null receiver): the conversation index keeps direct messages
-- only, so no group message ever falls into someone's conversation with
-- themselves; the unread inbox keeps messages with a receiver only.
drop index app_public.messages_conversation_idx;
create index messages_conversation_idx on app_public.messages (user_low, user_high, id) where group_id is null;
comment on index app_public.messages_conversation_idx is
  'Direct messages between two users by id: the conversation page walks it backwards over the row range (user_low, user_high, id) < (a, b, cursor).';
drop index app_public.messages_unread_inbox_idx;
create index messages_unread_inbox_idx on app_public.messages (receiver_id, id desc) include (sender_id, parent_message_id, sent_at)
  where read = false and receiver_id is not null;
comment on index app_public.messages_unread_inbox_idx is
  'Partial index of unread direct messages per receiver, newest first: the unread inbox and unread counts.';

-- The backfill: one direct conversation per pair that has exchanged a
-- message. Then the keys and indexes the table was created without.
insert into app_public.conversations (kind, user_low, user_high, created_at)
select 'direct', user_low, user_high, min(sent_at)
  from app_public.messages
 group by user_low, user_high;
alter table app_public.conversations
  add constraint conversations_user_low_fkey foreign key (user_low) references app_public.users on delete cascade,
  add constraint conversations_user_high_fkey foreign key (user_high) references app_public.users on delete cascade;
-- Not partial (groups have null pairs, which a unique index allows many
-- of): the cascades from users look rows up by user_low or user_high alone.
create unique index conversations_direct_pair_key on app_public.conversations (user_low, user_high);
comment on index app_public.conversations_direct_pair_key is
  'One direct conversation per pair; the conversation list''s direct conversations of user_low; the cascade from user_low.';
create index conversations_user_high_idx on app_public.conversations (user_high);
comment on index app_public.conversations_user_high_idx is
  'The conversation list''s direct conversations of user_high; the cascade from user_high.';

--------------------------------------------------------------------------------
-- Who is in a group: helpers for policies and queries. SECURITY DEFINER: a
-- policy on conversation_members that read conversation_members would
-- recurse; these read it once, scoped by their arguments.
--------------------------------------------------------------------------------

create function app_public.is_group_member(conversation_id bigint, who bigint) returns boolean
  language sql stable strict security definer set search_path = pg_catalog, pg_temp
as $$
  select exists (select from app_public.conversation_members p
                  where p.conversation_id = is_group_member.conversation_id and p.user_id = who and p.left_seq is null)
$$;
comment on function app_public.is_group_member(bigint, bigint) is
  'Whether `who` is a current member of the group.';

create function app_public.reads_group_message(group_id bigint, group_seq bigint, who bigint) returns boolean
  language sql stable strict security definer set search_path = pg_catalog, pg_temp
as $$
  select exists (select from app_public.conversation_members p
                  where p.conversation_id = group_id and p.user_id = who
                    and group_seq > p.joined_seq and (p.left_seq is null or group_seq <= p.left_seq))
$$;
comment on function app_public.reads_group_message(bigint, bigint, bigint) is
  'The visibility rule of group messages: `who` had a membership period of the group when the message at group_seq was sent. STRICT: a direct message (null group) is never read through it.';

create function app_public.group_manager(conversation_id bigint) returns bigint
  language sql stable strict security definer set search_path = pg_catalog, pg_temp
as $$
  select p.user_id from app_public.conversation_members p
   where p.conversation_id = group_manager.conversation_id and p.left_seq is null
   order by p.role = 'owner' desc, p.joined_seq, p.id
   limit 1
$$;
comment on function app_public.group_manager(bigint) is
  'Who manages a group (title, members): its longest-standing current owner, or, when no owner is left, its longest-standing member. Derived, so an owner''s leave or account deletion writes nothing to the group.';

-- The policies below and on messages call these as the request role.
grant execute on function app_public.is_group_member(bigint, bigint) to :DATABASE_VISITOR;
grant execute on function app_public.reads_group_message(bigint, bigint, bigint) to :DATABASE_VISITOR;
grant execute on function app_public.group_manager(bigint) to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Row-level security of conversations and members.
--------------------------------------------------------------------------------

alter table app_public.conversations enable row level security;
create policy select_own on app_public.conversations for select using (
  case kind when 'direct' then app_public.current_user_id() in (user_low, user_high)
            else app_public.is_group_member(id, app_public.current_user_id()) end);
comment on policy select_own on app_public.conversations is
  'A direct conversation is visible to its two users, a group to its current members.';
create policy update_managed on app_public.conversations for update
  using (kind = 'group' and app_public.group_manager(id) = app_public.current_user_id());
comment on policy update_managed on app_public.conversations is 'The group''s manager renames it.';
grant select on app_public.conversations to :DATABASE_VISITOR;
grant update (title) on app_public.conversations to :DATABASE_VISITOR;

alter table app_public.conversation_members enable row level security;
create policy select_co_member on app_public.conversation_members for select using (
  user_id = app_public.current_user_id() or app_public.is_group_member(conversation_id, app_public.current_user_id()));
comment on policy select_co_member on app_public.conversation_members is
  'A user sees their own membership periods and the members of the groups they are in.';
create policy insert_managed on app_public.conversation_members for insert with check (
  role = 'member' and app_public.group_manager(conversation_id) = app_public.current_user_id());
comment on policy insert_managed on app_public.conversation_members is 'The group''s manager adds members.';
create policy update_self_or_managed on app_public.conversation_members for update using (
  user_id = app_public.current_user_id() or app_public.group_manager(conversation_id) = app_public.current_user_id());
comment on policy update_self_or_managed on app_public.conversation_members is
  'A member leaves (left_at) and moves their read position; the manager removes members (left_at).';
grant select on app_public.conversation_members to :DATABASE_VISITOR;
grant insert (conversation_id, user_id, role) on app_public.conversation_members to :DATABASE_VISITOR;
grant update (left_at, read_seq) on app_public.conversation_members to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Triggers on conversations and members: one job each.
--------------------------------------------------------------------------------

-- The creator of a group becomes its owner, in the same statement.
create function app_private.tg_conversations__add_creator() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if app_public.current_user_id() is not null then
    insert into app_public.conversation_members (conversation_id, user_id, role)
    values (new.id, app_public.current_user_id(), 'owner');
  end if;
  return null;
end;
$$;
comment on function app_private.tg_conversations__add_creator() is
  'Makes the creating user (current_user_id()) the new group''s owner; a DBA''s group (no current user) starts empty and gets its members by INSERT.';
create trigger _100_add_creator
  after insert on app_public.conversations
  for each row when (new.kind = 'group')
  execute function app_private.tg_conversations__add_creator();
comment on trigger _100_add_creator on app_public.conversations is 'A group''s creator is its first member and owner.';

-- A period begins at the group's current position, taken under the group
-- row's lock (so no message is numbered "during" the join). Only groups
-- have members; at most 1000 current ones.
create function app_private.tg_conversation_members__begin_period() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  kind text;
begin
  select c.kind, c.last_seq into kind, new.joined_seq
    from app_public.conversations c where c.id = new.conversation_id for update;
  if kind is distinct from 'group' then
    raise exception 'conversation % is not a group', new.conversation_id
      using errcode = 'SB008', hint = 'Members belong to groups; a direct conversation is its two users.';
  end if;
  if exists (select from app_public.blocks b
              where b.blocker_id = new.user_id and b.blocked_id = app_public.current_user_id()) then
    raise exception 'user % has blocked user %', new.user_id, app_public.current_user_id()
      using errcode = 'SB007', hint = 'A blocked user cannot add the one who blocked them to a group.';
  end if;
  new.joined_at := clock_timestamp();
  new.left_at := null;
  new.left_seq := null;
  new.read_seq := new.joined_seq;
  return new;
end;
$$;
comment on function app_private.tg_conversation_members__begin_period() is
  'Sets joined_seq (and the read position) to the group''s last_seq under the group row''s lock; SB008 unless the conversation is a group, SB007 when the new member has blocked the one adding them.';
create trigger _100_begin_period
  before insert on app_public.conversation_members
  for each row execute function app_private.tg_conversation_members__begin_period();
comment on trigger _100_begin_period on app_public.conversation_members is
  'A membership period begins at the group''s current position (commit order against its messages).';

create function app_private.tg_conversation_members__limit_size() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  crowded bigint;
begin
  select g.conversation_id into crowded
    from (select distinct conversation_id from new_members) g
   where (select count(*) from app_public.conversation_members p
           where p.conversation_id = g.conversation_id and p.left_seq is null) > 1000
   limit 1;
  if crowded is not null then
    raise exception 'group % would have more than 1000 members', crowded
      using errcode = 'SB009';
  end if;
  return null;
end;
$$;
comment on function app_private.tg_conversation_members__limit_size() is
  'Raises SB009 when a statement leaves a group with more than 1000 current members (checked once per statement and group).';
create trigger _200_limit_size
  after insert on app_public.conversation_members
  referencing new table as new_members
  for each statement execute function app_private.tg_conversation_members__limit_size();
comment on trigger _200_limit_size on app_public.conversation_members is 'A group has at most 1000 current members (SB009).';

-- A period ends at the group's position when left_at is set. Only left_at
-- (once) and read_seq (forwards, within the period) may change.
create function app_private.tg_conversation_members__end_period() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if new.conversation_id <> old.conversation_id or new.user_id <> old.user_id or new.role <> old.role
     or new.joined_at <> old.joined_at or new.joined_seq <> old.joined_seq
     or (old.left_at is not null and new.left_at is distinct from old.left_at)
     or new.left_seq is distinct from old.left_seq then
    raise exception 'membership % can only be ended (left_at) or read further (read_seq)', old.id
      using errcode = 'SB002';
  end if;
  if old.left_at is null and new.left_at is not null then
    select c.last_seq into new.left_seq from app_public.conversations c where c.id = old.conversation_id for update;
    new.left_at := clock_timestamp();
  end if;
  -- The read position moves forwards only, and not past the period.
  new.read_seq := least(greatest(new.read_seq, old.read_seq),
                        coalesce(new.left_seq,
                                 (select c.last_seq from app_public.conversations c where c.id = old.conversation_id)));
  return new;
end;
$$;
comment on function app_private.tg_conversation_members__end_period() is
  'Ends a membership period: left_seq from the group''s last_seq (under its lock), left_at at clock_timestamp(); keeps read_seq moving forwards within the period; SB002 for any other change.';
create trigger _100_end_period
  before update on app_public.conversation_members
  for each row execute function app_private.tg_conversation_members__end_period();
comment on trigger _100_end_period on app_public.conversation_members is
  'Leaving stamps the group''s position; nothing else about a period changes.';

-- A group whose last member has gone goes with its messages (the cascade
-- from conversations). Checked per statement, for the groups it touched.
create function app_private.tg_conversation_members__drop_empty_group() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  gone bigint;
begin
  with touched as (
    select distinct conversation_id from old_members
  )
  delete from app_public.conversations c
   using touched t
   where c.id = t.conversation_id
     and not exists (select from app_public.conversation_members p where p.conversation_id = c.id and p.left_seq is null);
  get diagnostics gone = row_count;
  return null;
end;
$$;
comment on function app_private.tg_conversation_members__drop_empty_group() is
  'Deletes the groups a statement left without a current member (leave, removal, account deletion); their messages cascade.';
create trigger _300_drop_empty_group_on_leave
  after update on app_public.conversation_members
  referencing old table as old_members
  for each statement execute function app_private.tg_conversation_members__drop_empty_group();
comment on trigger _300_drop_empty_group_on_leave on app_public.conversation_members is 'The last member''s leave deletes the group and its messages.';
create trigger _300_drop_empty_group_on_delete
  after delete on app_public.conversation_members
  referencing old table as old_members
  for each statement execute function app_private.tg_conversation_members__drop_empty_group();
comment on trigger _300_drop_empty_group_on_delete on app_public.conversation_members is 'The last member''s account deletion deletes the group and its messages.';

-- Views of a group change for all its members when its membership does:
-- the same channel and setting as a message change.
create function app_private.tg_conversation_members__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  touched bigint[];
begin
  if tg_op = 'INSERT' then
    select array_agg(distinct p.user_id) into touched
      from (select distinct conversation_id from new_members) g
      join app_public.conversation_members p on p.conversation_id = g.conversation_id;
  elsif tg_op = 'UPDATE' then
    -- A period that ended changes every member's view of the group; a read
    -- position that moved changes its reader's alone (a read in a group of
    -- 1,000 must not evict 1,000 users' views).
    select array_agg(distinct u) into touched from (
      select p.user_id as u
        from (select distinct n.conversation_id from new_members n join old_members o on o.id = n.id
               where n.left_seq is distinct from o.left_seq) g
        join app_public.conversation_members p on p.conversation_id = g.conversation_id
      union
      select user_id from new_members) x;
  else
    select array_agg(distinct user_id) into touched from old_members;
  end if;
  perform app_private.announce_users(touched);
  return null;
end;
$$;
comment on function app_private.tg_conversation_members__announce_change() is
  'Announces the users whose views of a group a statement changed, so their cached views go: every period''s user of a group joined or left (members, leavers, the removed), the reader alone for a read position.';
create trigger _900_announce_insert
  after insert on app_public.conversation_members
  referencing new table as new_members
  for each statement execute function app_private.tg_conversation_members__announce_change();
comment on trigger _900_announce_insert on app_public.conversation_members is 'A join changes every member''s views of the group.';
create trigger _900_announce_update
  after update on app_public.conversation_members
  referencing old table as old_members new table as new_members
  for each statement execute function app_private.tg_conversation_members__announce_change();
comment on trigger _900_announce_update on app_public.conversation_members is 'A leave or a removal changes the members'' views of the group; a read, the reader''s.';
create trigger _900_announce_delete
  after delete on app_public.conversation_members
  referencing old table as old_members
  for each statement execute function app_private.tg_conversation_members__announce_change();
comment on trigger _900_announce_delete on app_public.conversation_members is 'A member''s account deletion changes their own views.';

create function app_private.tg_conversations__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.announce_users(array(
    select p.user_id from app_public.conversation_members p where p.conversation_id = new.id and p.left_seq is null));
  return null;
end;
$$;
comment on function app_private.tg_conversations__announce_change() is
  'Announces the current members of a renamed group so their cached views go.';
-- A row trigger on the title alone: a send's update of last_seq changes no
-- view by itself (the message's own trigger announces it).
create trigger _900_announce_update
  after update of title on app_public.conversations
  for each row when (old.title is distinct from new.title)
  execute function app_private.tg_conversations__announce_change();
comment on trigger _900_announce_update on app_public.conversations is 'A renamed group changes its members'' views.';

-- One announcement of changed views for a set of users, in the payload the
-- instances already understand; more than 500 users (a NOTIFY payload holds
-- 8,000 bytes) are announced in batches.
create function app_private.announce_users(users bigint[]) returns void
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  batch bigint[];
begin
  if users is null or cardinality(users) = 0 then
    return;
  end if;
  for i in 0 .. (cardinality(users) - 1) / 500 loop
    batch := users[i * 500 + 1 : i * 500 + 500];
    perform pg_notify('signalbox_conversations',
                      json_build_object('users', batch, 'instance', app_private.announcing_instance())::text);
  end loop;
  perform set_config('signalbox.touched',
                     concat_ws(',', nullif(current_setting('signalbox.touched', true), ''), array_to_string(users, ',')), true);
end;
$$;
comment on function app_private.announce_users(bigint[]) is
  'pg_notify(''signalbox_conversations'', {users, instance}) in batches of 500 users, and the users appended to signalbox.touched (the writer''s own eviction).';

--------------------------------------------------------------------------------
-- Triggers on messages: group rules beside the direct ones.
--------------------------------------------------------------------------------

-- A reply goes to its parent's conversation: a group reply to the group,
-- a direct reply to the parent's other participant.
create or replace function app_private.tg_messages__default_reply_receiver() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if found and parent.group_id is not null and new.group_id is null then
    new.group_id := parent.group_id;
  elsif found and parent.group_id is null and new.group_id is null
        and app_public.is_participant(parent.sender_id, parent.receiver_id, new.sender_id) then
    new.receiver_id := app_public.other_participant(parent.sender_id, parent.receiver_id, new.sender_id);
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__default_reply_receiver() is
  'Fills a reply''s conversation from its parent when it is omitted: group_id of a group parent, else receiver_id (the parent''s other participant).';
drop trigger _100_default_reply_receiver on app_public.messages;
create trigger _100_default_reply_receiver
  before insert on app_public.messages
  for each row when (new.parent_message_id is not null and new.receiver_id is null and new.group_id is null)
  execute function app_private.tg_messages__default_reply_receiver();
comment on trigger _100_default_reply_receiver on app_public.messages is
  'A reply needs only parent_message_id: its conversation (receiver or group) is the parent''s.';

-- A group message takes the group's next position under the group row's
-- lock, and only a current member may send one (DBAs included: a message
-- has a sender, and the sender must be in the group).
create function app_private.tg_messages__take_group_position() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  update app_public.conversations c set last_seq = c.last_seq + 1
   where c.id = new.group_id and c.kind = 'group'
  returning c.last_seq into new.group_seq;
  if not found then
    raise exception 'conversation % is not a group', new.group_id
      using errcode = 'SB008', hint = 'Send to a group''s id (POST /groups creates one), or to a receiver.';
  end if;
  -- After the lock: a leave that committed first is seen.
  if not app_public.is_group_member(new.group_id, new.sender_id) then
    raise exception 'user % is not a member of group %', new.sender_id, new.group_id
      using errcode = 'SB008', hint = 'Only current members send to a group.';
  end if;
  -- The members' users rows, in user-id order, before anything else this
  -- send locks (the parent, the counters): a direct message's receiver is
  -- locked as early, by the foreign-key check, and an account deletion
  -- takes its users row first too. A member whose deletion committed is
  -- not among them; one being deleted waits for this send, and then takes
  -- its notification and events with it.
  perform from app_public.users u
   where u.id in (select p.user_id from app_public.conversation_members p
                   where p.conversation_id = new.group_id and p.left_seq is null)
   order by u.id
   for key share of u;
  return new;
end;
$$;
comment on function app_private.tg_messages__take_group_position() is
  'Numbers a group message from its group''s counter (locked to commit), raises SB008 unless the group exists and the sender is a current member, and locks the members'' users rows (FOR KEY SHARE, in user-id order) as the lock order has them: before the parent and the counters.';
create trigger _120_take_group_position
  before insert on app_public.messages
  for each row when (new.group_id is not null)
  execute function app_private.tg_messages__take_group_position();
comment on trigger _120_take_group_position on app_public.messages is
  'Group messages: sender must be a current member (SB008); position in the group in commit order. The group row is the first lock of a group send.';

create or replace function app_private.tg_messages__check_reply_conversation() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if not found then
    raise exception 'parent message % does not exist', new.parent_message_id
      using errcode = 'SB005', hint = 'Reply to an existing message, or leave parent_message_id null to start a thread.';
  end if;
  if new.group_id is distinct from parent.group_id
     or (new.group_id is null and (least(new.sender_id, new.receiver_id) is distinct from parent.user_low
                                   or greatest(new.sender_id, new.receiver_id) is distinct from parent.user_high)) then
    raise exception 'a reply must be in the same conversation as message %', new.parent_message_id
      using errcode = 'SB001',
            hint = 'A reply goes to its parent''s conversation: omit receiver_id and group_id and it is filled in.';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__check_reply_conversation() is
  'Raises SB005 when the parent does not exist, SB001 unless the reply is in its parent''s conversation (the same group, or the same two participants).';

-- Derived columns now include the group position.
create or replace function app_private.tg_messages__protect_derived_columns() returns trigger
  language plpgsql volatile set search_path = pg_catalog, pg_temp
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
      when new.group_seq is not null then 'group_seq'
    end;
  else
    written := case
      when new.edited is distinct from old.edited then 'edited'
      when new.edited_at is distinct from old.edited_at then 'edited_at'
      when new.read_at is distinct from old.read_at then 'read_at'
      when new.reply_count is distinct from old.reply_count then 'reply_count'
      when new.thread_root_id is distinct from old.thread_root_id then 'thread_root_id'
      when new.depth is distinct from old.depth then 'depth'
      when new.group_seq is distinct from old.group_seq then 'group_seq'
    end;
  end if;
  if written is not null then
    raise exception 'column % of message % is maintained by triggers and cannot be written directly', written, coalesce(old.id, new.id)
      using errcode = 'SB006',
            hint = 'Change content (edited and edited_at follow) or read (read_at follows); reply_count, thread_root_id, depth and group_seq follow from parent_message_id and group_id.';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__protect_derived_columns() is
  'Raises SB006 when a statement writes edited, edited_at, read_at, reply_count, thread_root_id, depth or group_seq itself; trigger-issued updates (pg_trigger_depth() > 1) pass.';

create or replace function app_private.tg_messages__forbid_immutable_change() returns trigger
  language plpgsql volatile set search_path = pg_catalog, pg_temp
as $$
declare
  changed text := case
    when new.sender_id is distinct from old.sender_id then 'sender_id'
    when new.receiver_id is distinct from old.receiver_id then 'receiver_id'
    when new.group_id is distinct from old.group_id then 'group_id'
    when new.parent_message_id is distinct from old.parent_message_id then 'parent_message_id'
    else 'sent_at'
  end;
begin
  raise exception 'column % of message % cannot change after it is sent', changed, old.id
    using errcode = 'SB002',
          hint = 'Send a new message instead; only content (by the sender) and read (by the receiver) may change.';
end;
$$;
drop trigger _050_forbid_immutable_change on app_public.messages;
create trigger _050_forbid_immutable_change
  before update on app_public.messages
  for each row when (old.sender_id is distinct from new.sender_id or old.receiver_id is distinct from new.receiver_id
                     or old.group_id is distinct from new.group_id
                     or old.parent_message_id is distinct from new.parent_message_id or old.sent_at is distinct from new.sent_at)
  execute function app_private.tg_messages__forbid_immutable_change();
comment on trigger _050_forbid_immutable_change on app_public.messages is
  'Integrity: sender, receiver, group, parent and sent_at are fixed at insert (SB002).';

-- Who hears of a group message: the members whose period covers it, except
-- those who have blocked its sender (the sender's own clients included).
create function app_private.group_audience(group_id bigint, group_seq bigint, sender_id bigint) returns bigint[]
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(p.user_id order by p.user_id), '{}')
    from app_public.conversation_members p
   where p.conversation_id = group_id and p.left_seq is null and p.joined_seq < group_seq
     and not exists (select from app_public.blocks b where b.blocker_id = p.user_id and b.blocked_id = sender_id)
$$;
comment on function app_private.group_audience(bigint, bigint, bigint) is
  'The current members who see a group message and have not blocked its sender, in user-id order: who gets its live events (and, but the sender, its notification). VOLATILE: it sees the rows its caller''s statement wrote.';

create or replace function app_private.tg_messages__announce_live_insert() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  one app_public.messages;
  rows_in bigint;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 1 then
    -- Every API send: one message, no join, nothing planned per statement.
    select * into one from new_messages;
    perform app_private.record_live_event(
      case when one.group_id is null then array[one.sender_id, one.receiver_id]
           else app_private.group_audience(one.group_id, one.group_seq, one.sender_id) end,
      'message.created', one.id);
  else
    execute app_private.live_events_sql('message.created', $items$
      select distinct u.user_id, m.id as message_id
        from new_messages m
        cross join lateral (values (m.sender_id), (m.receiver_id)) u (user_id)
       where m.group_id is null
      union
      select u.user_id, m.id
        from new_messages m
        cross join lateral unnest(app_private.group_audience(m.group_id, m.group_seq, m.sender_id)) u (user_id)
       where m.group_id is not null
    $items$);
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_live_insert() is
  'message.created to both participants of each new direct message and to the audience of each group message (app_private.group_audience): one event per recipient and statement, taking their counters in user-id order before the notification triggers.';

create or replace function app_private.tg_messages__announce_live_update() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  rows_in bigint;
  n app_public.messages;
  o app_public.messages;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 0 then
    return null;
  elsif rows_in = 1 then
    -- An edit, a mark-read, a parent's reply_count: one row, no join.
    select * into n from new_messages;
    select * into o from old_messages;
    if n.content is distinct from o.content then
      perform app_private.record_live_event(
        case when n.group_id is null then array[n.sender_id, n.receiver_id]
             else app_private.group_audience(n.group_id, n.group_seq, n.sender_id) end,
        'message.edited', n.id);
    end if;
    if n.read and not o.read and n.sender_id <> n.receiver_id then
      perform app_private.record_live_event(array[n.sender_id], 'message.read', n.id);
    end if;
    return null;
  end if;
  -- Several rows: both join the transition tables, planned per statement.
  execute app_private.live_events_sql('message.edited', $items$
    select distinct u.user_id, n.id as message_id
      from new_messages n
      join old_messages o on o.id = n.id
      cross join lateral (values (n.sender_id), (n.receiver_id)) u (user_id)
     where n.content is distinct from o.content and n.group_id is null
    union
    select u.user_id, n.id
      from new_messages n
      join old_messages o on o.id = n.id
      cross join lateral unnest(app_private.group_audience(n.group_id, n.group_seq, n.sender_id)) u (user_id)
     where n.content is distinct from o.content and n.group_id is not null
  $items$);
  execute app_private.live_events_sql('message.read', $items$
    select n.sender_id as user_id, n.id as message_id
      from new_messages n
      join old_messages o on o.id = n.id
     where n.read and not o.read and n.sender_id <> n.receiver_id
  $items$);
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_live_update() is
  'message.edited to both participants (a group message: its audience) when content changed; message.read (a read receipt) to the sender when a direct message became read. One event per recipient, type and statement: a one-row statement through record_live_event, several rows through live_events_sql (planned per statement).';

-- A group message notifies its audience but the sender: one statement-level
-- insert for the whole fan-out, numbered from the members' counters, which
-- _450 has locked already, in user-id order.
create function app_private.tg_messages__notify_group_members() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $_$
declare
  rows_in bigint;
  one app_public.messages;
  announced bigint;
begin
  select count(*) into rows_in from (select 1 from new_messages where group_id is not null limit 2) x;
  if rows_in = 0 then
    return null; -- direct messages only: _500_notify_receiver's
  elsif rows_in = 1 then
    -- One group message (every API send to a group): no join with the
    -- transition table, the members read by the group's index.
    select * into one from new_messages where group_id is not null;
    with audience as (
      select u as user_id from unnest(app_private.group_audience(one.group_id, one.group_seq, one.sender_id)) u
       where u <> one.sender_id
    ), reserved as (
      insert into app_private.delivery_counters as c (user_id, last_seq)
      select user_id, 1 from audience order by user_id
      on conflict (user_id) do update set last_seq = c.last_seq + 1
      returning c.user_id, c.last_seq
    ), notified as (
      insert into app_public.notifications (user_id, message_id, kind, seq)
      select r.user_id, one.id, case when one.parent_message_id is null then 'message' else 'reply' end, r.last_seq
        from reserved r
      returning user_id
    )
    select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text)) into announced
      from notified;
  else
    -- Several (an import): planned for this statement's size.
    execute $sql$
      with items as (
        select u.user_id, m.id as message_id, m.parent_message_id
          from new_messages m
          cross join lateral unnest(app_private.group_audience(m.group_id, m.group_seq, m.sender_id)) u (user_id)
         where m.group_id is not null and u.user_id <> m.sender_id
      ), reserved as (
        insert into app_private.delivery_counters as c (user_id, last_seq)
        select user_id, count(*) from items group by user_id order by user_id
        on conflict (user_id) do update set last_seq = c.last_seq + excluded.last_seq
        returning c.user_id, c.last_seq
      ), notified as (
        insert into app_public.notifications (user_id, message_id, kind, seq)
        select i.user_id, i.message_id, case when i.parent_message_id is null then 'message' else 'reply' end,
               r.last_seq - count(*) over (partition by i.user_id) + row_number() over (partition by i.user_id order by i.message_id)
          from items i join reserved r on r.user_id = i.user_id
        returning user_id
      )
      select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text))
        from (select distinct user_id from notified) n
    $sql$ into announced;
  end if;
  return null;
end;
$_$;
comment on function app_private.tg_messages__notify_group_members() is
  'One notification per group message and member of its audience but the sender, numbered from their delivery counters (in user-id order), then pg_notify(''signalbox_notifications'', {userId}) per member. One message: no join with the transition table; several: one statement planned for its size.';
create trigger _510_notify_group_members
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__notify_group_members();
comment on trigger _510_notify_group_members on app_public.messages is
  'A new group message creates a notification for each member (but the sender, and those who blocked the sender): one statement for the fan-out.';

-- Direct conversations open with their first message.
create function app_private.tg_messages__open_direct_conversation() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  pair_low bigint;
  pair_high bigint;
  pairs bigint;
begin
  select count(*), min(user_low), min(user_high) into pairs, pair_low, pair_high
    from (select distinct user_low, user_high from new_messages where group_id is null limit 2) p;
  if pairs = 1 then
    -- Every API send: a lookup by the unique index; an existing pair is not
    -- locked (DO NOTHING).
    insert into app_public.conversations (kind, user_low, user_high) values ('direct', pair_low, pair_high)
    on conflict (user_low, user_high) do nothing;
  elsif pairs > 1 then
    insert into app_public.conversations (kind, user_low, user_high)
    select distinct 'direct', user_low, user_high from new_messages where group_id is null order by 2, 3
    on conflict (user_low, user_high) do nothing;
  end if;
  return null;
end;
$$;
comment on function app_private.tg_messages__open_direct_conversation() is
  'Inserts the direct conversation of each new direct message''s pair unless it exists (no lock on an existing one).';
create trigger _440_open_direct_conversation
  after insert on app_public.messages
  referencing new table as new_messages
  for each statement execute function app_private.tg_messages__open_direct_conversation();
comment on trigger _440_open_direct_conversation on app_public.messages is
  'The first message between two users opens their direct conversation.';

-- Group changes evict the members' views, as direct ones evict the pair's.
create or replace function app_private.tg_messages__announce_change() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  announced bigint;
  touched text;
  members bigint[];
  instance text := app_private.announcing_instance();
begin
  -- One NOTIFY per direct conversation touched; identical payloads in a
  -- transaction are folded by PostgreSQL. The transition table is read
  -- alone: no join.
  if tg_op = 'DELETE' then
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high), 'instance', instance)::text)),
           string_agg(user_low || ',' || user_high, ',')
      from (select distinct user_low, user_high from old_messages where group_id is null) pairs into announced, touched;
    select array_agg(distinct p.user_id) into members
      from (select distinct group_id from old_messages where group_id is not null) g
      join app_public.conversation_members p on p.conversation_id = g.group_id and p.left_seq is null;
  else
    select count(pg_notify('signalbox_conversations',
                           json_build_object('users', json_build_array(user_low, user_high), 'instance', instance)::text)),
           string_agg(user_low || ',' || user_high, ',')
      from (select distinct user_low, user_high from new_messages where group_id is null) pairs into announced, touched;
    select array_agg(distinct p.user_id) into members
      from (select distinct group_id from new_messages where group_id is not null) g
      join app_public.conversation_members p on p.conversation_id = g.group_id and p.left_seq is null;
  end if;
  -- For the writer itself (transaction-local, read by the API before commit).
  perform set_config('signalbox.touched',
                     concat_ws(',', nullif(current_setting('signalbox.touched', true), ''), touched), true);
  -- Group messages: their groups' current members.
  perform app_private.announce_users(members);
  return null;
end;
$$;
comment on function app_private.tg_messages__announce_change() is
  'pg_notify(''signalbox_conversations'', {users: [low, high], instance}) once per direct conversation a statement changed, the current members of the groups it changed through app_private.announce_users, and the same users appended to the transaction-local setting signalbox.touched (the writer''s own eviction).';

--------------------------------------------------------------------------------
-- Visibility: the participant rule or the group-period rule, one policy.
--------------------------------------------------------------------------------

drop policy select_participant on app_public.messages;
create policy select_reader on app_public.messages for select using (
  app_public.is_participant(sender_id, receiver_id, app_public.current_user_id())
  or app_public.reads_group_message(group_id, group_seq, app_public.current_user_id()));
comment on policy select_reader on app_public.messages is
  'A direct message is visible to its two participants; a group message to the users whose membership period covers it (its sender among them). The rule of history and notifications too.';
drop policy update_participant on app_public.messages;
create policy update_participant on app_public.messages for update using (
  app_public.is_participant(sender_id, receiver_id, app_public.current_user_id())
  or app_public.reads_group_message(group_id, group_seq, app_public.current_user_id()));
comment on policy update_participant on app_public.messages is
  'Readers may try to update a message; the triggers decide what each may change (the sender edits; a receiver marks read).';

-- The history of a group message is visible to who sees the message.
drop policy visible_message on app_public.message_history;
create policy visible_message on app_public.message_history for select using (
  exists (select 1 from app_public.messages m
           where m.id = message_history.message_id
             and (app_public.is_participant(m.sender_id, m.receiver_id, app_public.current_user_id())
                  or app_public.reads_group_message(m.group_id, m.group_seq, app_public.current_user_id()))));
comment on policy visible_message on app_public.message_history is
  'A message''s earlier versions are visible to whoever sees the message.';

create or replace function app_public.message_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object(
    'id', m.id, 'senderId', m.sender_id, 'receiverId', m.receiver_id, 'groupId', m.group_id,
    'parentMessageId', m.parent_message_id,
    'content', m.content, 'sentAt', app_public.api_time(m.sent_at),
    'edited', m.edited, 'editedAt', app_public.api_time(m.edited_at),
    'read', m.read, 'readAt', app_public.api_time(m.read_at),
    'replyCount', m.reply_count)
$$;

-- The direct page reads the (now partial) conversation index.
create or replace function app_public.conversation_page(visitor text, caller bigint, partner bigint, before bigint, page_size integer) returns text
  language plpgsql volatile
as $$
declare
  ids bigint[];
  messages text[];
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true),
          set_config('enable_bitmapscan', 'off', true);
  if not exists (select 1 from app_public.users where id = partner) then
    return null;
  end if;
  -- A range of messages_conversation_idx's own key in that key's order
  -- (migration 000008): the index walked backwards from the cursor, one row
  -- past the page to know whether another page follows.
  select array_agg(p.id order by p.id desc), array_agg(p.message order by p.id desc)
    into ids, messages
    from (
      select m.id, app_public.message_json(m)::text as message
        from app_public.messages m
       where (m.user_low, m.user_high, m.id) > (least(caller, partner), greatest(caller, partner), 0)
         and (m.user_low, m.user_high, m.id) < (least(caller, partner), greatest(caller, partner),
                                                coalesce(before, 9223372036854775807))
         and m.group_id is null
       order by m.user_low desc, m.user_high desc, m.id desc
       limit page_size + 1
    ) p;
  return '{"messages":[' || coalesce(array_to_string(messages[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(ids) > page_size then ids[page_size]::text else 'null' end || '}';
end;
$$;

-- A group's page, the same way: one statement that sets the caller, the
-- group index walked backwards from the cursor (a position), the policy
-- deciding what the caller sees (their periods).
create function app_public.group_page(visitor text, caller bigint, group_id bigint, before bigint, page_size integer) returns text
  language plpgsql volatile
as $$
declare
  positions bigint[];
  messages text[];
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  if not exists (select from app_public.conversation_members p
                  where p.conversation_id = group_page.group_id and p.user_id = caller) then
    return null;
  end if;
  select array_agg(p.group_seq order by p.group_seq desc), array_agg(p.message order by p.group_seq desc)
    into positions, messages
    from (
      select m.group_seq, app_public.message_json(m)::text as message
        from app_public.messages m
       where m.group_id = group_page.group_id and m.group_seq < coalesce(before, 9223372036854775807)
       order by m.group_seq desc
       limit page_size + 1
    ) p;
  return '{"messages":[' || coalesce(array_to_string(messages[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(positions) > page_size then positions[page_size]::text else 'null' end || '}';
end;
$$;
comment on function app_public.group_page(text, bigint, bigint, bigint, integer) is
  'GET /groups/:id/messages in one statement: sets the request role and the caller, answers the page (newest first, before a group position) as the API''s JSON text ({messages, nextCursor: a position}); null when the caller was never a member. Row-level security decides which messages: those of the caller''s membership periods.';
grant execute on function app_public.group_page(text, bigint, bigint, bigint, integer) to :DATABASE_VISITOR;

-- Search: the caller's messages now include the group messages they read.
create or replace function app_public.search_hits(query tsquery, with_user bigint, after_rank real, after_id bigint, max_rows integer, rank_window integer)
  returns table (id bigint, rank real)
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $_$
declare
  me bigint := app_public.current_user_id();
begin
  if me is null then
    return;
  end if;
  return query execute $sql$
    select w.id, ts_rank(w.search, $1) as rank
      from (select m.id, m.search
              from app_public.messages m
             where m.search @@ $1
               and (app_public.is_participant(m.sender_id, m.receiver_id, $2)
                    or ($3::bigint is null and app_public.reads_group_message(m.group_id, m.group_seq, $2)))
               and ($3::bigint is null or (m.group_id is null and m.user_low = least($2, $3) and m.user_high = greatest($2, $3)))
             order by m.id desc
             limit $7) w
     where ($5::bigint is null or (ts_rank(w.search, $1), w.id) < ($4, $5))
     order by 2 desc, 1 desc
     limit $6
  $sql$ using query, me, with_user, after_rank, after_id, least(greatest(max_rows, 1), 1000),
              least(greatest(rank_window, 1), 1000000);
end;
$_$;
comment on function app_public.search_hits(tsquery, bigint, real, bigint, integer, integer) is
  'The caller''s (current_user_id()) messages matching a tsquery — direct ones they take part in, group ones of their membership periods — ranked among the caller''s newest rank_window matches, by ts_rank then id, after a (rank, id) cursor, optionally in one direct conversation: ids and ranks only. SECURITY DEFINER so that the GIN index can serve @@ (not leakproof, so under RLS only a filter); scoped by the same rules as the policies.';

--------------------------------------------------------------------------------
-- The API's ways in that must take the group row first.
--------------------------------------------------------------------------------

-- Creating a group with its members in one call. SECURITY DEFINER: the
-- new group is not visible to its creator until the creator's membership
-- exists (the AFTER trigger), so an INSERT … RETURNING under row-level
-- security would refuse its own row. The caller is current_user_id().
create function app_public.create_group(title text, member_ids bigint[]) returns bigint
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  me bigint := app_public.current_user_id();
  created bigint;
begin
  if me is null then
    raise exception 'create_group needs a signed-in caller (signalbox.user_id)' using errcode = '42501';
  end if;
  insert into app_public.conversations (kind, title) values ('group', title) returning id into created;
  insert into app_public.conversation_members (conversation_id, user_id, role)
  select created, u, 'member' from (select distinct u from unnest(member_ids) u where u <> me order by u) x;
  return created;
end;
$$;
comment on function app_public.create_group(text, bigint[]) is
  'POST /groups: a group with this title, the caller as its owner and these users as members (the caller and duplicates skipped); its id. 23503 (conversation_members_user_id_fkey) for an unknown user, SB007 for one who has blocked the caller, SB009 above 1000 members.';
grant execute on function app_public.create_group(text, bigint[]) to :DATABASE_VISITOR;

-- Ending a membership takes the group row before the member row (the lock
-- order of sends and adds), then ends the period under row-level security
-- (the member themself, or the manager). Whether a period ended.
create function app_public.leave_group(conversation_id bigint, member_id bigint) returns boolean
  language plpgsql volatile
as $$
declare
  ended bigint;
begin
  perform from app_public.conversations c where c.id = leave_group.conversation_id for update;
  update app_public.conversation_members p set left_at = now()
   where p.conversation_id = leave_group.conversation_id and p.user_id = member_id and p.left_seq is null;
  get diagnostics ended = row_count;
  return ended > 0;
end;
$$;
comment on function app_public.leave_group(bigint, bigint) is
  'DELETE /groups/:id/members/:userId: ends the user''s membership (the caller leaving, or the manager removing them), taking the group row''s lock first; false when nothing the caller may end was found.';
grant execute on function app_public.leave_group(bigint, bigint) to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- The conversation list, direct and group together, in one statement. The
-- caller's conversations are few (hundreds), their messages many: the list
-- costs one backward index step per conversation for its newest message,
-- and the unread counts of the page's rows only. SECURITY DEFINER, scoped
-- by current_user_id() with the policies' own rules spelt out (a direct
-- pair the caller is in; a group the caller is a current member of, from
-- their joining on): under row-level security every candidate row would
-- call the group policy's function, and the plan is cached per session
-- (PL/pgSQL), where the same query sent by the service was planned for 9
-- ms on every request.
--------------------------------------------------------------------------------

create function app_public.caller_conversations(before bigint, page_size integer) returns text
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  me bigint := app_public.current_user_id();
  entries text[];
  last_ids bigint[];
begin
  if me is null then
    return null;
  end if;
  with mine as (
    select c.id, 'direct' as kind, c.title, c.user_high as partner_id, 0::bigint as joined_seq
      from app_public.conversations c where c.kind = 'direct' and c.user_low = me
    union all
    select c.id, 'direct', c.title, c.user_low, 0
      from app_public.conversations c where c.kind = 'direct' and c.user_high = me and c.user_low <> me
    union all
    select c.id, 'group', c.title, null, p.joined_seq
      from app_public.conversation_members p
      join app_public.conversations c on c.id = p.conversation_id
     where p.user_id = me and p.left_seq is null
  ), latest as (
    select mine.*, last.id as last_id
      from mine
      cross join lateral (
        (select m.id from app_public.messages m
          where mine.kind = 'direct' and m.group_id is null
            and m.user_low = least(me, mine.partner_id) and m.user_high = greatest(me, mine.partner_id)
          order by m.user_low desc, m.user_high desc, m.id desc limit 1)
        union all
        (select m.id from app_public.messages m
          where mine.kind = 'group' and m.group_id = mine.id and m.group_seq > mine.joined_seq
          order by m.group_id desc, m.group_seq desc limit 1)
      ) last
     where last.id < coalesce(before, 9223372036854775807)
     order by last.id desc
     limit page_size + 1
  )
  select array_agg(json_build_object(
           'kind', l.kind,
           'user', case when l.kind = 'direct' then json_build_object(
                     'id', u.id, 'username', u.username, 'displayName', u.display_name,
                     'createdAt', app_public.api_time(u.created_at)) end,
           'group', case when l.kind = 'group' then json_build_object('id', l.id, 'title', l.title) end,
           'lastMessage', app_public.message_json(m),
           'unreadCount', case when l.kind = 'group' then
               (select count(*) from app_public.messages g
                 where g.group_id = l.id and g.group_seq > (select greatest(p.read_seq, p.joined_seq) from app_public.conversation_members p
                                                             where p.conversation_id = l.id and p.user_id = me and p.left_seq is null)
                   and g.sender_id <> me)
             else (select count(*) from app_public.messages d
                    where d.receiver_id = me and d.read = false and d.sender_id = l.partner_id) end
         )::text order by l.last_id desc),
         array_agg(l.last_id order by l.last_id desc)
    into entries, last_ids
    from latest l
    join app_public.messages m on m.id = l.last_id
    left join app_public.users u on u.id = l.partner_id;
  return '{"conversations":[' || coalesce(array_to_string(entries[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(last_ids) > page_size then last_ids[page_size]::text else 'null' end || '}';
end;
$$;
comment on function app_public.caller_conversations(bigint, integer) is
  'GET /conversations: the caller''s (current_user_id()) direct and group conversations, newest message first, before a last-message id, as the API''s JSON text ({conversations: [{kind, user, group, lastMessage, unreadCount}], nextCursor}); scoped by the same rules as the policies.';
grant execute on function app_public.caller_conversations(bigint, integer) to :DATABASE_VISITOR;

-- One statement from the service (no transaction of its own), as the
-- conversation page: sets the request role and the caller, then answers.
create function app_public.conversation_list(visitor text, caller bigint, before bigint, page_size integer) returns text
  language plpgsql volatile
as $$
begin
  perform set_config('role', visitor, true), set_config('signalbox.user_id', caller::text, true);
  return app_public.caller_conversations(before, page_size);
end;
$$;
comment on function app_public.conversation_list(text, bigint, bigint, integer) is
  'GET /conversations in one statement: sets the request role and the caller (transaction-locally), then app_public.caller_conversations.';
grant execute on function app_public.conversation_list(text, bigint, bigint, integer) to :DATABASE_VISITOR;
