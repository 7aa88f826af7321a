--! Previous: sha1:c8ab6534536b1d67a3b0f3d675c0d5a33ecc7b36
--! Hash: sha1:3df375543d71ce630d8fba2b1e590c13e63dc4ba
--! Message: safety: unsend (tombstones that keep no copy of the words), reports with snapshots, moderation and suspension

--------------------------------------------------------------------------------
-- Safety (docs/safety.md): unsend, reports, moderation, suspension. Each is
-- a rule of the database, so psql and every client are held to it.
--
-- Unsend makes a message a tombstone: its row stays (replies stay attached,
-- threads keep their shape, cursors do not move) with content null and
-- deleted_at set, and every copy of its words goes in the same transaction:
-- its history, its search entry (a generated column of the content), report
-- snapshots of it; notification previews and live events hold no copy (they
-- are built from the row). A message.deleted event reaches the
-- participants on the delivery cursor.
--------------------------------------------------------------------------------

alter table app_public.users
  add column is_moderator boolean not null default false,
  add column suspended_at timestamptz;
comment on column app_public.users.is_moderator is
  'A moderator sees open reports and resolves them (GET /moderation/reports). Set by a DBA: update app_public.users set is_moderator = true where username = …;';
comment on column app_public.users.suspended_at is
  'When a moderator suspended the account (null: not suspended): a suspended user can neither sign in nor send (SB011), and their sessions were ended.';

alter table app_public.messages
  alter column content drop not null,
  add column deleted_at timestamptz;
alter table app_public.messages
  add constraint messages_tombstone check ((content is null) = (deleted_at is not null));
comment on column app_public.messages.content is 'The words; null once the message is unsent (a tombstone, deleted_at set).';
comment on column app_public.messages.deleted_at is 'When the sender (or a moderator) unsent the message: its content and every copy of it are gone; the row stays for its replies.';
comment on constraint messages_tombstone on app_public.messages is 'A message has words, or it is a tombstone: never both, never neither.';
grant update (deleted_at) on app_public.messages to :DATABASE_VISITOR;

alter table app_public.live_events drop constraint live_events_type_check;
alter table app_public.live_events add constraint live_events_type_check
  check (type in ('message.created', 'message.edited', 'message.read', 'message.deleted'));
comment on constraint live_events_type_check on app_public.live_events is 'The event types the stream knows.';

create function app_public.is_moderator(who bigint) returns boolean
  language sql stable strict security definer set search_path = pg_catalog, pg_temp
as $$
  select coalesce((select u.is_moderator from app_public.users u where u.id = who), false)
$$;
comment on function app_public.is_moderator(bigint) is 'Whether `who` is a moderator (users.is_moderator).';
grant execute on function app_public.is_moderator(bigint) to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Unsend: who may, and what goes.
--------------------------------------------------------------------------------

-- Setting deleted_at makes the tombstone: only the sender or a moderator,
-- once, and the content goes with it. A tombstone changes no more.
create function app_private.tg_messages__make_tombstone() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  actor bigint := app_public.current_user_id();
begin
  if old.deleted_at is not null then
    raise exception 'message % was unsent; it cannot change', old.id
      using errcode = 'SB002', hint = 'An unsent message stays a tombstone.';
  end if;
  if actor is not null and actor <> old.sender_id and not app_public.is_moderator(actor) then
    raise exception 'only the sender may unsend message %', old.id
      using errcode = 'SB003', hint = 'Act as the sender (signalbox.user_id), or report the message.';
  end if;
  new.deleted_at := clock_timestamp();
  new.content := null;
  return new;
end;
$$;
comment on function app_private.tg_messages__make_tombstone() is
  'Unsend: when deleted_at is set, SB003 unless the actor is the sender or a moderator (none: a DBA), then content null and deleted_at at clock_timestamp(); SB002 when a tombstone''s deleted_at or content would change.';
create trigger _030_make_tombstone
  before update on app_public.messages
  for each row when (new.deleted_at is distinct from old.deleted_at or (old.deleted_at is not null and new.content is not null))
  execute function app_private.tg_messages__make_tombstone();
comment on trigger _030_make_tombstone on app_public.messages is
  'Unsend (sender or moderator) blanks the content; a tombstone''s words and time never change again (its read flag and reply count still may: replies stay possible).';

-- The edit triggers are for edits, not for unsending: no history of the
-- words that are going, no sender check (the tombstone trigger made it),
-- and a blocked user may still unsend what they sent.
drop trigger _060_check_participant_role on app_public.messages;
create trigger _060_check_participant_role
  before update on app_public.messages
  for each row when ((old.content is distinct from new.content and new.deleted_at is null) or old.read is distinct from new.read)
  execute function app_private.tg_messages__check_participant_role();
comment on trigger _060_check_participant_role on app_public.messages is
  'Authorization second wall: only the sender edits (SB003), only the receiver marks read (SB004).';
drop trigger _070_refuse_blocked_edit on app_public.messages;
create trigger _070_refuse_blocked_edit
  before update on app_public.messages
  for each row when (old.content is distinct from new.content and new.deleted_at is null)
  execute function app_private.tg_messages__refuse_blocked_sender();
comment on trigger _070_refuse_blocked_edit on app_public.messages is
  'Block: a blocked user cannot change the words of a message to the one who blocked them (SB007); unsending stays possible.';
drop trigger _200_record_history on app_public.messages;
create trigger _200_record_history
  before update on app_public.messages
  for each row when (old.content is distinct from new.content and new.deleted_at is null)
  execute function app_private.tg_messages__record_history();
comment on trigger _200_record_history on app_public.messages is
  'Every content change, API or psql, single or bulk, keeps the previous version (an unsend keeps none).';

-- Every copy of the words goes with them: earlier versions, report
-- snapshots; the notifications of an unsent message are read (nothing is
-- left to read).
create function app_private.tg_messages__forget_unsent_words() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  delete from app_public.message_history where message_id = new.id;
  update app_public.reports set content_snapshot = null where message_id = new.id and content_snapshot is not null;
  update app_public.notifications set read_at = new.deleted_at where message_id = new.id and read_at is null;
  return null;
end;
$$;
comment on function app_private.tg_messages__forget_unsent_words() is
  'After an unsend: deletes the message''s history, clears report snapshots of it, marks its notifications read.';
create trigger _220_forget_unsent_words
  after update on app_public.messages
  for each row when (old.deleted_at is null and new.deleted_at is not null)
  execute function app_private.tg_messages__forget_unsent_words();
comment on trigger _220_forget_unsent_words on app_public.messages is
  'Unsend leaves no copy of the words: history, report snapshots; the notifications are read.';

-- message.deleted instead of message.edited for an unsend.
create or replace function app_private.tg_messages__announce_live_update() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $_$
declare
  rows_in bigint;
  n app_public.messages;
  o app_public.messages;
begin
  select count(*) into rows_in from (select 1 from new_messages limit 2) x;
  if rows_in = 0 then
    return null;
  elsif rows_in = 1 then
    -- An edit, an unsend, a mark-read, a parent's reply_count: one row, no join.
    select * into n from new_messages;
    select * into o from old_messages;
    if n.content is distinct from o.content then
      perform app_private.record_live_event(
        case when n.group_id is null then array[n.sender_id, n.receiver_id]
             else app_private.group_audience(n.group_id, n.group_seq, n.sender_id) end,
        case when n.deleted_at is not null then 'message.deleted' else 'message.edited' end, n.id);
    end if;
    if n.read and not o.read and n.sender_id <> n.receiver_id then
      perform app_private.record_live_event(array[n.sender_id], 'message.read', n.id);
    end if;
    return null;
  end if;
  -- Several rows: both join the transition tables, planned per statement.
  foreach n.content in array array['message.edited', 'message.deleted'] loop
    execute app_private.live_events_sql(n.content, format($items$
      select distinct u.user_id, n.id as message_id
        from new_messages n
        join old_messages o on o.id = n.id
        cross join lateral (values (n.sender_id), (n.receiver_id)) u (user_id)
       where n.content is distinct from o.content and n.group_id is null and (n.deleted_at is not null) = %1$L
      union
      select u.user_id, n.id
        from new_messages n
        join old_messages o on o.id = n.id
        cross join lateral unnest(app_private.group_audience(n.group_id, n.group_seq, n.sender_id)) u (user_id)
       where n.content is distinct from o.content and n.group_id is not null and (n.deleted_at is not null) = %1$L
    $items$, n.content = 'message.deleted'));
  end loop;
  execute app_private.live_events_sql('message.read', $items$
    select n.sender_id as user_id, n.id as message_id
      from new_messages n
      join old_messages o on o.id = n.id
     where n.read and not o.read and n.sender_id <> n.receiver_id
  $items$);
  return null;
end;
$_$;
comment on function app_private.tg_messages__announce_live_update() is
  'message.edited to both participants (a group message: its audience) when content changed, message.deleted when it was unsent; message.read (a read receipt) to the sender when a direct message became read. One event per recipient, type and statement: a one-row statement through record_live_event, several rows through live_events_sql (planned per statement).';

create or replace function app_public.message_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object(
    'id', m.id, 'senderId', m.sender_id, 'receiverId', m.receiver_id, 'groupId', m.group_id,
    'parentMessageId', m.parent_message_id,
    'content', m.content, 'sentAt', app_public.api_time(m.sent_at),
    'edited', m.edited, 'editedAt', app_public.api_time(m.edited_at),
    'read', m.read, 'readAt', app_public.api_time(m.read_at),
    'replyCount', m.reply_count, 'deletedAt', app_public.api_time(m.deleted_at))
$$;

--------------------------------------------------------------------------------
-- Suspension: no new session, no send.
--------------------------------------------------------------------------------

create function app_private.tg_messages__refuse_suspended_sender() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from app_public.users u where u.id = new.sender_id and u.suspended_at is not null) then
    raise exception 'user % is suspended', new.sender_id using errcode = 'SB011';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__refuse_suspended_sender() is 'Raises SB011 when the sender is suspended.';
create trigger _140_refuse_suspended_sender
  before insert on app_public.messages
  for each row execute function app_private.tg_messages__refuse_suspended_sender();
comment on trigger _140_refuse_suspended_sender on app_public.messages is 'A suspended user cannot send (SB011), from the API or psql.';

create or replace function app_public.start_session(user_id bigint, token_hash bytea, ttl_hours integer, device_hash bytea) returns void
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from app_public.users u where u.id = start_session.user_id and u.suspended_at is not null) then
    raise exception 'user % is suspended', user_id using errcode = 'SB011';
  end if;
  insert into app_private.sessions (token_hash, user_id, expires_at)
  values (token_hash, user_id, now() + make_interval(hours => ttl_hours));
  -- The device is trusted for this account (touched if it was); the
  -- account keeps its 20 most recently used devices.
  insert into app_private.trusted_devices as d (token_hash, user_id)
  values (device_hash, user_id)
  on conflict on constraint trusted_devices_pkey do update set last_used_at = now();
  delete from app_private.trusted_devices d
   where d.user_id = start_session.user_id
     and d.token_hash not in (select t.token_hash from app_private.trusted_devices t
                               where t.user_id = start_session.user_id
                               order by t.last_used_at desc limit 20);
end;
$$;
comment on function app_public.start_session(bigint, bytea, integer, bytea) is
  'After the service has checked a password (or created the account): a session (SHA-256 of its token) valid for ttl_hours, and the device (SHA-256 of its token) trusted for the account, which keeps its 20 most recently used devices. SB011 for a suspended account.';

--------------------------------------------------------------------------------
-- Reports and moderation.
--------------------------------------------------------------------------------

create table app_public.reports (
  id bigint primary key generated always as identity,
  message_id bigint not null references app_public.messages on delete cascade,
  reporter_id bigint not null references app_public.users on delete cascade,
  reported_user_id bigint not null references app_public.users on delete cascade,
  reason text not null,
  content_snapshot text,
  created_at timestamptz not null default now(),
  status text not null default 'open',
  resolved_at timestamptz,
  resolved_by bigint references app_public.users on delete set null,
  action text,
  constraint reports_reason_length check (char_length(btrim(reason)) between 1 and 1000),
  constraint reports_status check (status in ('open', 'resolved')),
  constraint reports_action check (action in ('dismiss', 'delete_message', 'suspend_user')),
  constraint reports_resolved_together check ((status = 'resolved') = (resolved_at is not null) and (status = 'resolved') = (action is not null)),
  constraint reports_once unique (message_id, reporter_id),
  constraint reports_not_own check (reported_user_id <> reporter_id)
);
comment on table app_public.reports is
  'A user''s report of a message they can read: the reason, and the content as it was when reported (later edits do not change it; an unsend clears it). Moderators resolve reports. Goes with the message, the reporter or the reported account.';
comment on column app_public.reports.content_snapshot is 'The message''s content when it was reported (set by a trigger); null once the message is unsent.';
comment on column app_public.reports.reported_user_id is 'The message''s sender (set by a trigger).';
comment on constraint reports_once on app_public.reports is 'One report per message and reporter; also serves the cascade from messages.';
comment on constraint reports_not_own on app_public.reports is 'Nobody reports their own message.';
create index reports_open_idx on app_public.reports (id) where status = 'open';
comment on index app_public.reports_open_idx is 'The moderators'' queue: open reports, oldest first.';
create index reports_reporter_id_idx on app_public.reports (reporter_id, id);
comment on index app_public.reports_reporter_id_idx is 'A user''s own reports (export); the cascade from users.';
create index reports_reported_user_id_idx on app_public.reports (reported_user_id);
comment on index app_public.reports_reported_user_id_idx is 'The cascade from users.';
create index reports_resolved_by_idx on app_public.reports (resolved_by);
comment on index app_public.reports_resolved_by_idx is 'ON DELETE SET NULL from users.';

alter table app_public.reports enable row level security;
create policy select_own_or_moderator on app_public.reports for select using (
  reporter_id = app_public.current_user_id() or app_public.is_moderator(app_public.current_user_id()));
comment on policy select_own_or_moderator on app_public.reports is 'A reporter sees their reports; moderators see all.';
create policy insert_readable on app_public.reports for insert with check (
  reporter_id = app_public.current_user_id()
  and exists (select from app_public.messages m where m.id = message_id));
comment on policy insert_readable on app_public.reports is
  'A user reports, as themselves, a message they can read (the messages policy decides: a participant or a member of its period).';
grant select on app_public.reports to :DATABASE_VISITOR;
grant insert (message_id, reporter_id, reason) on app_public.reports to :DATABASE_VISITOR;

create function app_private.tg_reports__take_snapshot() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  select m.content, m.sender_id into new.content_snapshot, new.reported_user_id
    from app_public.messages m where m.id = new.message_id and m.deleted_at is null;
  if not found then
    raise exception 'message % does not exist or was unsent', new.message_id using errcode = 'SB005';
  end if;
  new.status := 'open';
  new.resolved_at := null;
  new.resolved_by := null;
  new.action := null;
  new.created_at := clock_timestamp();
  return new;
end;
$$;
comment on function app_private.tg_reports__take_snapshot() is
  'Fills a new report from its message: the content as it is now (the snapshot) and the sender; a report starts open.';
create trigger _100_take_snapshot
  before insert on app_public.reports
  for each row execute function app_private.tg_reports__take_snapshot();
comment on trigger _100_take_snapshot on app_public.reports is 'A report keeps the words as they were when reported, and who wrote them.';

create table app_private.moderation_actions (
  id bigint primary key generated always as identity,
  report_id bigint,
  moderator_id bigint,
  action text not null,
  target_user_id bigint,
  message_id bigint,
  created_at timestamptz not null default now(),
  constraint moderation_actions_action check (action in ('dismiss', 'delete_message', 'suspend_user'))
);
comment on table app_private.moderation_actions is
  'The moderation audit, for a DBA: every resolution (who, which report, what, on whom, when). Ids only, no content and no foreign keys: the record outlives the accounts and messages it names.';

-- Resolving a report, in one call. SECURITY DEFINER: the audit table and
-- the suspension are no request's to write; the caller must be a moderator.
create function app_public.resolve_report(report_id bigint, action text) returns app_public.reports
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  me bigint := app_public.current_user_id();
  report app_public.reports;
begin
  if me is null or not app_public.is_moderator(me) then
    raise exception 'only a moderator resolves reports' using errcode = '42501';
  end if;
  if action not in ('dismiss', 'delete_message', 'suspend_user') then
    raise exception 'unknown action %', action using errcode = '22023';
  end if;
  select * into report from app_public.reports r where r.id = report_id for update;
  if not found then
    raise exception 'report % does not exist', report_id using errcode = 'SB005';
  end if;
  if report.status <> 'open' then
    raise exception 'report % is already resolved', report_id using errcode = 'SB012';
  end if;
  if action = 'delete_message' then
    -- The tombstone trigger checks the actor: a moderator.
    update app_public.messages set deleted_at = now() where id = report.message_id and deleted_at is null;
  elsif action = 'suspend_user' then
    update app_public.users set suspended_at = coalesce(suspended_at, now()) where id = report.reported_user_id;
    -- Their sessions end: the sessions trigger announces it to every
    -- instance, which closes the user's streams.
    delete from app_private.sessions s where s.user_id = report.reported_user_id;
  end if;
  insert into app_private.moderation_actions (report_id, moderator_id, action, target_user_id, message_id)
  values (report.id, me, action, report.reported_user_id, report.message_id);
  update app_public.reports r
     set status = 'resolved', resolved_at = clock_timestamp(), resolved_by = me, action = resolve_report.action
   where r.id = report.id
  returning * into report;
  return report;
end;
$$;
comment on function app_public.resolve_report(bigint, text) is
  'POST /moderation/reports/:id/resolve: as a moderator (else 42501), resolves an open report (SB005: none; SB012: resolved already) with dismiss, delete_message (the message becomes a tombstone) or suspend_user (no sign-in, no send, sessions ended); audited in app_private.moderation_actions.';
grant execute on function app_public.resolve_report(bigint, text) to :DATABASE_VISITOR;

--------------------------------------------------------------------------------
-- Unread counts leave tombstones out (the unread inbox does, in its query);
-- the list counts the caller's unread direct messages once per request,
-- not once per conversation (12.8 ms for a user with 240 conversations and
-- 1,100 unread messages, in bench:ceiling).
--------------------------------------------------------------------------------

-- Every access of the list is by an index of its own key; with statistics
-- that lag the table (bench:ceiling takes them at 2,000 messages) the
-- planner chose a sequential scan of messages for the unread counts (11 ms
-- of 14) and walked the primary key backwards, filtering, for a
-- conversation's newest message. Sequential scans are off for the
-- function, and the newest message is a range of the conversation index's
-- own key in that key's order (as the conversation page, migration 000008):
-- no other index yields it.
create or replace function app_public.caller_conversations(before bigint, page_size integer) returns text
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp set enable_seqscan = off
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
            and (m.user_low, m.user_high, m.id) > (least(me, mine.partner_id), greatest(me, mine.partner_id), 0)
            and (m.user_low, m.user_high, m.id) < (least(me, mine.partner_id), greatest(me, mine.partner_id), 9223372036854775807)
          order by m.user_low desc, m.user_high desc, m.id desc limit 1)
        union all
        (select m.id from app_public.messages m
          where mine.kind = 'group' and m.group_id = mine.id and m.group_seq > mine.joined_seq
          order by m.group_id desc, m.group_seq desc limit 1)
      ) last
     where last.id < coalesce(before, 9223372036854775807)
     order by last.id desc
     limit page_size + 1
  ), unread as (
    -- The caller's unread direct messages per sender, counted once off the
    -- partial unread index (not once per conversation of the page).
    select d.sender_id, count(*) as n
      from app_public.messages d
     where d.receiver_id = me and d.read = false and d.deleted_at is null
     group by d.sender_id
  )
  select array_agg(json_build_object(
           'kind', l.kind,
           'user', case when l.kind = 'direct' then json_build_object(
                     'id', u.id, 'username', u.username, 'displayName', u.display_name,
                     'createdAt', app_public.api_time(u.created_at)) end,
           'group', case when l.kind = 'group' then json_build_object('id', l.id, 'title', l.title) end,
           'lastMessage', app_public.message_json(m),
           -- A group's count inline: a function call per row cost 2 of
           -- the list's 3 ms at 200 groups.
           'unreadCount', case when l.kind = 'group' then
               (select count(*) from app_public.messages g
                 where g.group_id = l.id and g.deleted_at is null and g.sender_id <> me
                   and g.group_seq > (select greatest(p.read_seq, p.joined_seq) from app_public.conversation_members p
                                       where p.conversation_id = l.id and p.user_id = me and p.left_seq is null))
             else coalesce(ur.n, 0) end
         )::text order by l.last_id desc),
         array_agg(l.last_id order by l.last_id desc)
    into entries, last_ids
    from latest l
    join app_public.messages m on m.id = l.last_id
    left join app_public.users u on u.id = l.partner_id
    left join unread ur on ur.sender_id = l.partner_id and l.kind = 'direct';
  return '{"conversations":[' || coalesce(array_to_string(entries[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(last_ids) > page_size then last_ids[page_size]::text else 'null' end || '}';
end;
$$;
