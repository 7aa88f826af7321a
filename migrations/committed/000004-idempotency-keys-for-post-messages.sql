--! Previous: sha1:cbcd877a1613ae7e5feb50bf6a98211eebb7594a
--! Hash: sha1:6645630b346a4df305cc1b0866259afde0fed951
--! Message: Idempotency keys for POST /messages

--------------------------------------------------------------------------------
-- Idempotent sends: POST /messages with an Idempotency-Key.
--
-- A client whose answer was lost (the connection died at COMMIT) cannot
-- know whether its message was stored. With a key, the retry is safe: the
-- key is claimed in the same statement, and so the same transaction, as the
-- message, so either both exist or neither does. A retry with the same key
-- and the same request within 24 hours gets the original message and writes
-- nothing; the same key with a different request is refused.
--------------------------------------------------------------------------------

drop table if exists app_private.idempotency_keys;

create table app_private.idempotency_keys (
  sender_id bigint not null references app_public.users on delete cascade,
  key text not null
    constraint idempotency_keys_key_format check (key ~ '^[\x21-\x7e]{1,255}$'),
  -- SHA-256 of the validated request (receiver, parent, content).
  request_hash bytea not null,
  message_id bigint not null references app_public.messages on delete cascade,
  created_at timestamptz not null default now(),
  constraint idempotency_keys_pkey primary key (sender_id, key)
);
comment on table app_private.idempotency_keys is
  'Idempotency-Key of POST /messages: the message a sender''s key produced, claimed in the same statement as the message. Older than 24 h, a key may be claimed again.';
comment on column app_private.idempotency_keys.request_hash is
  'SHA-256 of the validated request; the same key with another request is refused (409).';
create index idempotency_keys_message_id_idx on app_private.idempotency_keys (message_id);
comment on index app_private.idempotency_keys_message_id_idx is 'Serves the cascade from messages.';

-- The request role claims and reads its own keys only.
alter table app_private.idempotency_keys enable row level security;
create policy own on app_private.idempotency_keys for all
  using (sender_id = app_public.current_user_id())
  with check (sender_id = app_public.current_user_id());
comment on policy own on app_private.idempotency_keys is 'A sender sees and claims only their own keys.';
grant usage on schema app_private to :DATABASE_VISITOR;
grant select, insert, update on app_private.idempotency_keys to :DATABASE_VISITOR;
