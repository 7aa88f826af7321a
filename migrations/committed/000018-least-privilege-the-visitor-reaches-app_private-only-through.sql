--! Previous: sha1:848ec94ea4ebabcc891c12ad353c08674221eed0
--! Hash: sha1:2b84856829819c8d2c3ca513d6fca6ab86b73094
--! Message: least privilege: the visitor reaches app_private only through SECURITY DEFINER functions in app_public

--------------------------------------------------------------------------------
-- Least privilege, as graphile/starter does it.
--
-- Three roles (README, "Roles"): the owner (MIGRATE_DATABASE_URL: owns the
-- schema, runs the migrations and the jobs), the authenticator (DATABASE_URL:
-- LOGIN NOINHERIT, a member of the visitor only, whose sessions start as the
-- visitor: ALTER ROLE ... SET role, src/db/setup.ts), and the visitor
-- (:DATABASE_VISITOR, NOLOGIN, no BYPASSRLS: every request). The visitor
-- gets no way into app_private but SECURITY DEFINER functions in
-- app_public, each doing one thing:
--
-- * what the API's reads call in app_private moves to app_public (the JSON
--   shapes, the conversation page, search hits, the stream horizon), and so
--   does app_private.idempotency_keys, with its row-level policy;
-- * sign-up, the login's credentials, a session's start and end, and the
--   session lookups become functions, so the auth routes no longer write as
--   the owner;
-- * the visitor loses USAGE on app_private.
--
-- Those functions are the runtime's trust boundary: argon2 runs in the
-- service, so a caller of app_public.login_credentials() reads a password
-- hash, and app_public.start_session() starts a session for the user the
-- service has checked. What the runtime role cannot do any more: change the
-- schema, bypass row-level security, read or write app_private's tables,
-- read the audit, or become the owner.
--------------------------------------------------------------------------------

-- What the reads call, out of app_private. The SQL bodies name each other
-- by schema, so the callers are defined again after the move.
alter function app_private.api_time(timestamptz) set schema app_public;
alter function app_private.message_json(app_public.messages) set schema app_public;
alter function app_private.read_receipt_json(app_public.messages) set schema app_public;
alter function app_private.search_hits(tsquery, bigint, real, bigint, integer, integer) set schema app_public;
alter function app_private.stream_horizon() set schema app_public;
alter function app_private.conversation_page(text, bigint, bigint, bigint, integer) set schema app_public;
alter table app_private.idempotency_keys set schema app_public;

create or replace function app_public.message_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object(
    'id', m.id, 'senderId', m.sender_id, 'receiverId', m.receiver_id, 'parentMessageId', m.parent_message_id,
    'content', m.content, 'sentAt', app_public.api_time(m.sent_at),
    'edited', m.edited, 'editedAt', app_public.api_time(m.edited_at),
    'read', m.read, 'readAt', app_public.api_time(m.read_at),
    'replyCount', m.reply_count)
$$;

create or replace function app_public.read_receipt_json(m app_public.messages) returns json
  language sql stable
as $$
  select json_build_object('id', m.id, 'receiverId', m.receiver_id, 'readAt', app_public.api_time(m.read_at))
$$;

create or replace function app_public.conversation_page(
  visitor text,
  caller bigint,
  partner bigint,
  before bigint,
  page_size int
) returns text
  language plpgsql
  volatile
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
       order by m.user_low desc, m.user_high desc, m.id desc
       limit page_size + 1
    ) p;
  return '{"messages":[' || coalesce(array_to_string(messages[1:page_size], ','), '') || '],"nextCursor":'
         || case when cardinality(ids) > page_size then ids[page_size]::text else 'null' end || '}';
end;
$$;

-- The prune names its tables: idempotency keys moved.
create or replace function app_private.prune_batch(target text, cutoff timestamptz, batch_size int) returns bigint
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $_$
declare
  spec record;
  deleted bigint;
begin
  -- What each kind is: its table, key, age column, which rows may go, and
  -- whether its rows are numbered on a user's stream (seq): those move the
  -- user's stream horizon.
  select * into spec from (values
    ('sessions',         'app_private.sessions',         'id',               'expires_at', 'true',                false),
    ('idempotency_keys', 'app_public.idempotency_keys',  'sender_id, key',   'created_at', 'true',                false),
    ('live_events',      'app_public.live_events',       'user_id, seq',     'created_at', 'true',                true),
    -- Read ones only: an unread notification stays until it is read.
    ('notifications',    'app_public.notifications',     'id',               'created_at', 'read_at is not null', true),
    ('deleted_accounts', 'app_private.deleted_accounts', 'id',               'deleted_at', 'true',                false),
    ('prune_runs',       'app_private.prune_runs',       'id',               'started_at', 'true',                false)
  ) k (name, tbl, key, age, condition, numbered) where k.name = target;
  if not found then
    raise exception 'unknown prune target %', target using errcode = '22023';
  end if;
  -- Oldest first, by the age column's index. SKIP LOCKED: a row the API
  -- holds is left for the next run, so a batch never waits on a request
  -- (and a request waits at most on one batch's commit, for rows nobody
  -- reads any more). Planned per call (EXECUTE): one plan per batch.
  execute format($sql$
    with gone as (
      delete from %1$s where (%2$s) in (
        select %2$s from %1$s where %3$s < $1 and %4$s order by %3$s limit $2 for update skip locked)
      returning %5$s)
    %6$s
    select count(*) from gone
  $sql$, spec.tbl, spec.key, spec.age, spec.condition,
    case when spec.numbered then 'user_id, seq' else '1' end,
    case when spec.numbered then $h$
    , horizon as (
      insert into app_private.stream_horizons as h (user_id, pruned_through)
      select user_id, max(seq) from gone group by user_id order by user_id
      on conflict (user_id) do update set pruned_through = greatest(h.pruned_through, excluded.pruned_through)
      returning 1)$h$ else '' end)
  into deleted using cutoff, batch_size;
  return deleted;
end;
$_$;

-- Accounts and sessions, through functions: the visitor reads and writes
-- app_private's tables only here, one job each.

create function app_public.register_user(username text, display_name text, password_hash text)
  returns app_public.users
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  created app_public.users;
begin
  insert into app_public.users (username, display_name) values (username, display_name) returning * into created;
  insert into app_private.user_secrets (user_id, password_hash) values (created.id, password_hash);
  return created;
end;
$$;
comment on function app_public.register_user(text, text, text) is
  'Sign-up: a user and their password hash (argon2id, computed by the service) in one call; 23505 on users_username_key when the name is taken.';

create function app_public.login_credentials(username text, device_hash bytea)
  returns table (id bigint, username text, display_name text, created_at timestamptz, password_hash text, trusted_device boolean)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select u.id, u.username, u.display_name, u.created_at, s.password_hash,
         exists (select from app_private.trusted_devices d where d.token_hash = device_hash and d.user_id = u.id)
    from app_public.users u
    join app_private.user_secrets s on s.user_id = u.id
   where u.username = login_credentials.username
$$;
comment on function app_public.login_credentials(text, bytea) is
  'Login: the user with this username, their password hash (the service verifies it with argon2) and whether the device token (SHA-256) was issued to them; no row for an unknown username.';

create function app_public.caller_password_hash() returns text
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select password_hash from app_private.user_secrets where user_id = app_public.current_user_id()
$$;
comment on function app_public.caller_password_hash() is
  'The signed-in caller''s own password hash (DELETE /me checks the password); null without a caller.';

create function app_public.start_session(user_id bigint, token_hash bytea, ttl_hours int, device_hash bytea)
  returns void
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
begin
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
comment on function app_public.start_session(bigint, bytea, int, bytea) is
  'After the service has checked a password (or created the account): a session (SHA-256 of its token) valid for ttl_hours, and the device (SHA-256 of its token) trusted for the account, which keeps its 20 most recently used devices.';

create function app_public.end_session(token_hash bytea) returns void
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  delete from app_private.sessions s where s.token_hash = end_session.token_hash
$$;
comment on function app_public.end_session(bytea) is
  'Logout: deletes the session with this token (SHA-256); its revocation is announced by the sessions trigger.';

create function app_public.session_user_id(token_hash bytea)
  returns table (user_id bigint, expires_at timestamptz)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.user_id, s.expires_at from app_private.sessions s
   where s.token_hash = session_user_id.token_hash and s.expires_at > now()
$$;
comment on function app_public.session_user_id(bytea) is
  'The user and expiry of a live session (SHA-256 of its token); no row when it is unknown, expired or revoked.';

create function app_public.live_sessions(token_hashes bytea[])
  returns table (token_hash bytea, user_id bigint)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.token_hash, s.user_id from app_private.sessions s
   where s.token_hash = any (token_hashes) and s.expires_at > now()
$$;
comment on function app_public.live_sessions(bytea[]) is
  'Which of these sessions (SHA-256 of their tokens) are live, and whose: the live streams re-check theirs with it on every heartbeat.';

-- Who may call what: these functions, the moved reads and the moved table
-- to the visitor; app_private to nobody but its owner.
revoke all on function app_public.register_user(text, text, text) from public;
revoke all on function app_public.login_credentials(text, bytea) from public;
revoke all on function app_public.caller_password_hash() from public;
revoke all on function app_public.start_session(bigint, bytea, int, bytea) from public;
revoke all on function app_public.end_session(bytea) from public;
revoke all on function app_public.session_user_id(bytea) from public;
revoke all on function app_public.live_sessions(bytea[]) from public;
revoke all on function app_public.conversation_page(text, bigint, bigint, bigint, int) from public;
grant execute on function app_public.register_user(text, text, text) to :DATABASE_VISITOR;
grant execute on function app_public.login_credentials(text, bytea) to :DATABASE_VISITOR;
grant execute on function app_public.caller_password_hash() to :DATABASE_VISITOR;
grant execute on function app_public.start_session(bigint, bytea, int, bytea) to :DATABASE_VISITOR;
grant execute on function app_public.end_session(bytea) to :DATABASE_VISITOR;
grant execute on function app_public.session_user_id(bytea) to :DATABASE_VISITOR;
grant execute on function app_public.live_sessions(bytea[]) to :DATABASE_VISITOR;
grant execute on function app_public.conversation_page(text, bigint, bigint, bigint, int) to :DATABASE_VISITOR;
revoke usage on schema app_private from :DATABASE_VISITOR;

-- Without a caller the visitor sees no user either: the directory is for
-- signed-in users (GET /users/:username is behind authentication).
drop policy select_all on app_public.users;
create policy select_signed_in on app_public.users for select using (app_public.current_user_id() is not null);
comment on policy select_signed_in on app_public.users is
  'Signed-in callers see every user (usernames and display names: GET /users/:username, the other side of a conversation); without a caller, nobody.';
