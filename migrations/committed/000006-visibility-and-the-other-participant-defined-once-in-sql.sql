--! Previous: sha1:0b3d26c5f47b00404dc41e82c10bd6cd8a1c86cb
--! Hash: sha1:8ecaccf706155eb1ffc8f26e4f89eb0a7352da94
--! Message: Visibility and the other participant defined once, in SQL

--------------------------------------------------------------------------------
-- Who may see a message, and who "the other one" is, defined once.
--
-- The row-level security policies, the API's queries (their explicit
-- first wall) and the reply trigger all use these two functions, so a
-- change of the rule (group conversations, say) is one definition. Both are
-- plain immutable SQL expressions, which PostgreSQL inlines wherever they
-- are used: plans are the same as with the expression written out (the
-- policy still drives the sender/receiver index scans, checked with EXPLAIN).
--------------------------------------------------------------------------------

create or replace function app_public.is_participant(sender_id bigint, receiver_id bigint, who bigint) returns boolean
  language sql immutable parallel safe
as $$
  select sender_id = who or receiver_id = who;
$$;
comment on function app_public.is_participant(bigint, bigint, bigint) is
  'Whether `who` takes part in a message from sender_id to receiver_id: the visibility rule of messages (and so of their history and notifications), used by the policies and the queries alike.';
grant execute on function app_public.is_participant(bigint, bigint, bigint) to :DATABASE_VISITOR;

create or replace function app_public.other_participant(sender_id bigint, receiver_id bigint, who bigint) returns bigint
  language sql immutable parallel safe
as $$
  select case when sender_id = who then receiver_id else sender_id end;
$$;
comment on function app_public.other_participant(bigint, bigint, bigint) is
  'The participant of a conversation who is not `who`: a reply''s default receiver, a conversation''s partner.';
grant execute on function app_public.other_participant(bigint, bigint, bigint) to :DATABASE_VISITOR;

alter policy select_participant on app_public.messages
  using (app_public.is_participant(sender_id, receiver_id, app_public.current_user_id()));
alter policy update_participant on app_public.messages
  using (app_public.is_participant(sender_id, receiver_id, app_public.current_user_id()));

-- A reply with no receiver goes to the other participant of its parent.
create or replace function app_private.tg_messages__default_reply_receiver() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  parent app_public.messages;
begin
  select * into parent from app_public.messages where id = new.parent_message_id;
  if found and app_public.is_participant(parent.sender_id, parent.receiver_id, new.sender_id) then
    new.receiver_id := app_public.other_participant(parent.sender_id, parent.receiver_id, new.sender_id);
  end if;
  return new;
end;
$$;
