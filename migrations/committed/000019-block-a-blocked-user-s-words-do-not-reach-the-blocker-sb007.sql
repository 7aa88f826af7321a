--! Previous: sha1:2b84856829819c8d2c3ca513d6fca6ab86b73094
--! Hash: sha1:15d2c2d2de3699a44f76e7d5c79973ebbf434ac6
--! Message: block: a blocked user's words do not reach the blocker (SB007)

--------------------------------------------------------------------------------
-- Blocking (README, "Blocking"). A row says: blocker_id does not want to hear
-- from blocked_id. The rule is the database's, so psql, imports and every
-- client are held to it: a message from a blocked user to the one who
-- blocked them, and an edit of such a message, raise SB007 (the API's 403
-- BLOCKED). The conversation already there stays readable to both; the
-- blocker may still write (and so unblock nothing by accident). Only the
-- blocker sees the row: a blocked user learns of it from a refused send and
-- nowhere else.
--------------------------------------------------------------------------------

create table app_public.blocks (
  blocker_id bigint not null references app_public.users on delete cascade,
  blocked_id bigint not null references app_public.users on delete cascade,
  created_at timestamptz not null default now(),
  primary key (blocker_id, blocked_id),
  constraint blocks_not_self check (blocker_id <> blocked_id)
);
comment on table app_public.blocks is
  'Who blocked whom: messages (and edits) from blocked_id to blocker_id are refused with SB007. Visible to the blocker only; deleted with either account.';
comment on constraint blocks_not_self on app_public.blocks is 'Nobody blocks themselves.';
-- The primary key serves the send's check (blocker = receiver, blocked =
-- sender) and the blocker's list; this one the cascade from the blocked
-- user's deletion.
create index blocks_blocked_id_idx on app_public.blocks (blocked_id);
comment on index app_public.blocks_blocked_id_idx is 'The cascade when a blocked user''s account is deleted.';

alter table app_public.blocks enable row level security;
create policy own on app_public.blocks
  using (blocker_id = app_public.current_user_id())
  with check (blocker_id = app_public.current_user_id());
comment on policy own on app_public.blocks is 'A user sees, adds and removes their own blocks only.';
grant select, delete on app_public.blocks to :DATABASE_VISITOR;
grant insert (blocker_id, blocked_id) on app_public.blocks to :DATABASE_VISITOR;

-- One job: refuse a blocked sender's words. SECURITY DEFINER: the sender
-- cannot see the receiver's blocks (row-level security), the rule must.
-- VOLATILE: a multi-row import sees the blocks its own transaction wrote.
create function app_private.tg_messages__refuse_blocked_sender() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from app_public.blocks b where b.blocker_id = new.receiver_id and b.blocked_id = new.sender_id) then
    raise exception 'user % has blocked user %', new.receiver_id, new.sender_id
      using errcode = 'SB007';
  end if;
  return new;
end;
$$;
comment on function app_private.tg_messages__refuse_blocked_sender() is
  'Raises SB007 when the message''s receiver has blocked its sender.';
-- After _100_default_reply_receiver: a reply's receiver is known by then.
create trigger _150_refuse_blocked_sender
  before insert on app_public.messages
  for each row execute function app_private.tg_messages__refuse_blocked_sender();
comment on trigger _150_refuse_blocked_sender on app_public.messages is
  'Block: a blocked user cannot send (or reply) to the one who blocked them (SB007).';
create trigger _070_refuse_blocked_edit
  before update on app_public.messages
  for each row when (old.content is distinct from new.content)
  execute function app_private.tg_messages__refuse_blocked_sender();
comment on trigger _070_refuse_blocked_edit on app_public.messages is
  'Block: a blocked user cannot change the words of a message to the one who blocked them (SB007).';
