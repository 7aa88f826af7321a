--! Previous: sha1:3df375543d71ce630d8fba2b1e590c13e63dc4ba
--! Hash: sha1:b7c8c3c8303753e6976c3c3f232135d68d9e7c75
--! Message: account.deleted: an account's deletion reaches its direct partners and its groups' members as a live event (id only)

-- An account's deletion reaches the people who talked with it: a live event
-- `account.deleted` {userId} on the stream of each direct partner and of
-- each current member of a group the account was in, in the deletion's own
-- transaction. Until now their open conversation kept showing words the
-- database had already deleted, and a send answered "not found".
--
-- The event names the deleted account by id and holds nothing else (no
-- name, no content: the brief's rule that no copy of a deleted account's
-- words survives). Who is told is found where the deletion's cascade
-- removes the rows that tie them: a direct conversation (conversations,
-- user_low/user_high) and a group membership (conversation_members). The
-- triggers fire inside the cascade, after the account's row is locked and
-- its messages are gone, and take the recipients' delivery counters last,
-- in user-id order: the lock order of every other writer (rows, parent,
-- counters by user id). A send to the account waits on its row before it
-- takes any counter, so the two cannot deadlock.

-- 1. The event ------------------------------------------------------------------

alter table app_public.live_events
  add column account_id bigint,
  drop constraint live_events_type_check,
  add constraint live_events_type_check
    check (type in ('message.created', 'message.edited', 'message.read', 'message.deleted', 'account.deleted')),
  drop constraint live_events_message_count_positive,
  -- A message event names its messages; an account event names the account
  -- and no message (they are deleted with it).
  add constraint live_events_subject check (
    case when type = 'account.deleted'
         then account_id is not null and message_count = 0 and cardinality(message_ids) = 0
         else account_id is null and message_count >= cardinality(message_ids) and message_count > 0
    end);
comment on constraint live_events_type_check on app_public.live_events is 'The event types the stream knows.';
comment on constraint live_events_subject on app_public.live_events is
  'A message event holds its messages'' ids (at least one, counted); account.deleted holds the deleted account''s id and no message.';
comment on column app_public.live_events.account_id is
  'account.deleted: the account that was deleted (no foreign key: it is gone). Null for message events.';

-- 2. Recording it -----------------------------------------------------------------

create function app_private.record_account_deletions(recipients bigint[], accounts bigint[]) returns void
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
declare
  woken bigint;
begin
  -- The recipients' rows first, in id order (as a group send locks its
  -- members'): a recipient whose own deletion is under way is waited for
  -- and then skipped, never given a counter after theirs was deleted.
  perform from app_public.users u
   where u.id = any(recipients)
   order by u.id
   for key share of u;
  with items as (
    -- Pairs (recipient, deleted account); a recipient deleted in the same
    -- statement or just before is not told (their delivery state is gone).
    select distinct x.r as user_id, x.a as account_id
      from unnest(recipients, accounts) as x(r, a)
      join app_public.users u on u.id = x.r
  ), per_user as (
    select user_id, array_agg(account_id order by account_id) as gone from items group by user_id
  ), reserved as (
    -- One seq per event, the counters taken in user-id order.
    insert into app_private.delivery_counters as c (user_id, last_seq)
    select user_id, cardinality(gone) from per_user order by user_id
    on conflict (user_id) do update set last_seq = c.last_seq + excluded.last_seq
    returning c.user_id, c.last_seq
  ), recorded as (
    insert into app_public.live_events (user_id, seq, type, message_ids, message_count, account_id)
    select p.user_id, r.last_seq - cardinality(p.gone) + a.ord, 'account.deleted', '{}', 0, a.account_id
      from per_user p
      join reserved r on r.user_id = p.user_id
      cross join lateral unnest(p.gone) with ordinality as a(account_id, ord)
    returning user_id
  )
  -- Wake the recipients' streams (the channel the other events use).
  select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text))
    into woken
    from (select distinct user_id from recorded) r;
end;
$$;
comment on function app_private.record_account_deletions(bigint[], bigint[]) is
  'Records account.deleted for each (recipient, deleted account) pair whose recipient still exists: seqs from the recipients'' counters in user-id order, streams woken.';

-- 3. Who is told ------------------------------------------------------------------

create function app_private.tg_conversations__tell_partner_of_deletion() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
declare
  recipients bigint[];
  accounts bigint[];
begin
  -- A direct conversation that went because one participant's account went:
  -- the other is told. (Both gone: nobody; both there: not a deletion.)
  select array_agg(case when lo.id is null then o.user_high else o.user_low end),
         array_agg(case when lo.id is null then o.user_low else o.user_high end)
    into recipients, accounts
    from old_conversations o
    left join app_public.users lo on lo.id = o.user_low
    left join app_public.users hi on hi.id = o.user_high
   where o.kind = 'direct'
     and (lo.id is null) <> (hi.id is null);
  if recipients is not null then
    perform app_private.record_account_deletions(recipients, accounts);
  end if;
  return null;
end;
$$;
comment on function app_private.tg_conversations__tell_partner_of_deletion() is
  'account.deleted to the other participant of each direct conversation that an account deletion removed.';
create trigger _800_tell_partner_of_deletion
  after delete on app_public.conversations
  referencing old table as old_conversations
  for each statement execute function app_private.tg_conversations__tell_partner_of_deletion();
comment on trigger _800_tell_partner_of_deletion on app_public.conversations is
  'In the cascade of an account deletion: the partner''s open conversation learns that the account and its messages are gone.';

create function app_private.tg_conversation_members__tell_members_of_deletion() returns trigger
  language plpgsql volatile security definer
  set search_path to pg_catalog, pg_temp
as $$
declare
  recipients bigint[];
  accounts bigint[];
begin
  -- The memberships (any period) of accounts that no longer exist: every
  -- current member of those groups is told (the account's messages left
  -- their view of the group, and so did the member).
  select array_agg(p.user_id), array_agg(g.user_id)
    into recipients, accounts
    from (select distinct o.conversation_id, o.user_id
            from old_members o
           where not exists (select from app_public.users u where u.id = o.user_id)) g
    join app_public.conversation_members p on p.conversation_id = g.conversation_id and p.left_seq is null;
  if recipients is not null then
    perform app_private.record_account_deletions(recipients, accounts);
  end if;
  return null;
end;
$$;
comment on function app_private.tg_conversation_members__tell_members_of_deletion() is
  'account.deleted to the current members of each group a deleted account had been in.';
create trigger _800_tell_members_of_deletion
  after delete on app_public.conversation_members
  referencing old table as old_members
  for each statement execute function app_private.tg_conversation_members__tell_members_of_deletion();
comment on trigger _800_tell_members_of_deletion on app_public.conversation_members is
  'In the cascade of an account deletion (after _300 dropped a group left empty): the group''s members learn that the account and its messages are gone.';
