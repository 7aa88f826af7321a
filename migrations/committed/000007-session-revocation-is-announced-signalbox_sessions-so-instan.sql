--! Previous: sha1:8ecaccf706155eb1ffc8f26e4f89eb0a7352da94
--! Hash: sha1:61a2e2d649de1a5de9bc78245750036f35eb1209
--! Message: Session revocation is announced (signalbox_sessions), so instances may cache sessions

--------------------------------------------------------------------------------
-- Session revocation is announced, so instances may cache sessions.
--
-- Every API request used to look its bearer token up in app_private.sessions
-- (one round trip before anything else). The API now keeps live sessions in
-- memory for a short while (src/auth/session-cache.ts), which is only sound
-- if every instance learns at once that a session is gone: whoever deletes
-- it (logout, account deletion through the cascade, a DBA's DELETE, a purge
-- of expired rows) or changes it (a shortened expiry, a moved user_id).
-- This statement-level trigger sends the affected users on
-- signalbox_sessions after commit; instances drop those users' cached
-- sessions. Above 200 users in one statement it sends {"all": true}
-- instead: a NOTIFY payload is limited to 8000 bytes.
--
-- The writing transaction itself also records those users in the
-- transaction-local setting signalbox.revoked (as signalbox.touched does
-- for views, migration 000005): the API reads it before commit and drops
-- them from its own cache before answering, so the instance that deleted an
-- account refuses the account's token at once, without waiting for the echo.
--------------------------------------------------------------------------------

create or replace function app_private.tg_sessions__announce_revocation() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  users bigint[];
begin
  -- The transition table is read alone (no join, no plan that depends on
  -- its size); distinct users, at most 201 of them.
  select array_agg(user_id) into users
    from (select distinct user_id from old_sessions limit 201) u;
  if users is null then
    return null;
  end if;
  perform pg_notify('signalbox_sessions',
                    case when cardinality(users) > 200 then '{"all":true}'
                         else json_build_object('users', users)::text end);
  perform set_config('signalbox.revoked',
                     concat_ws(',', nullif(current_setting('signalbox.revoked', true), ''),
                               case when cardinality(users) > 200 then 'all' else array_to_string(users, ',') end),
                     true);
  return null;
end;
$$;
comment on function app_private.tg_sessions__announce_revocation() is
  'pg_notify(''signalbox_sessions'', {users: [...]}) (or {all: true} above 200 users) for sessions a statement deleted or changed, so every instance drops them from its session cache; the same users appended to the transaction-local signalbox.revoked (the writer''s own instance).';

drop trigger if exists _900_announce_revocation on app_private.sessions;
create trigger _900_announce_revocation
  after delete on app_private.sessions
  referencing old table as old_sessions
  for each statement execute function app_private.tg_sessions__announce_revocation();
comment on trigger _900_announce_revocation on app_private.sessions is
  'Announces deleted sessions (logout, account deletion, purges) to the instances'' session caches.';

drop trigger if exists _901_announce_change on app_private.sessions;
create trigger _901_announce_change
  after update on app_private.sessions
  referencing old table as old_sessions
  for each statement execute function app_private.tg_sessions__announce_revocation();
comment on trigger _901_announce_change on app_private.sessions is
  'Announces changed sessions (expiry, owner) by their old user, so no instance keeps the old version cached.';
