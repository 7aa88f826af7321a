-- plan: 9
-- Least privilege (migration 000018, README "Roles"): what the role the
-- service logs in as can and cannot do. The session takes the runtime
-- role's identity the way a login does: SET SESSION AUTHORIZATION to the
-- authenticator, then the role its logins start as (its ALTER ROLE ... SET
-- role, which applies at login only).
\i test/sql/_assert.sql
\if :{?authenticator}
\else
  \set authenticator signalbox_authenticator
\endif

\i test/sql/_people.sql
insert into app_public.messages (sender_id, receiver_id, content) values (:alice, :bob, 'private words');
insert into app_private.sessions (token_hash, user_id, expires_at) values ('\x00'::bytea || :'run'::bytea, :alice, now() + interval '1 hour');
select current_user as owner \gset

select pg_temp.ok(r.rolcanlogin and not r.rolinherit and not r.rolsuper and not r.rolbypassrls
                  and (select array_agg(g.rolname::text) from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid) = array[:'visitor'],
  'the authenticator logs in, inherits nothing, bypasses nothing, and is a member of the visitor only')
  from pg_roles r where r.rolname = :'authenticator';
select pg_temp.ok(exists (select from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
                          where r.rolname = :'authenticator' and s.setdatabase = 0 and 'role=' || :'visitor' = any (s.setconfig)),
  'its logins start as the visitor');
select pg_temp.ok(not has_schema_privilege(:'visitor', 'app_private', 'usage'), 'the visitor has no way into app_private');

set local session authorization :authenticator;
set local role :visitor;
select pg_temp.is(current_user::text, :'visitor', 'the runtime session runs as the visitor');
select pg_temp.is((select count(*) from app_public.messages) + (select count(*) from app_public.users)
                  + (select count(*) from app_public.notifications) + (select count(*) from app_public.idempotency_keys), 0::bigint,
  'without a user set, the service''s tables show nothing');
select pg_temp.ok(pg_temp.error_of('select count(*) from app_private.sessions') ~ '^42501:',
  'app_private''s tables are refused (42501)');
select pg_temp.is((select user_id from app_public.session_user_id('\x00'::bytea || :'run'::bytea)), :alice::bigint,
  'a session is looked up through its function, and only so');
select pg_temp.ok(pg_temp.error_of(format('set role %I', :'owner')) ~ '^42501:', 'set role to the owner fails');
reset role;
select pg_temp.ok(pg_temp.error_of(format('set role %I', :'owner')) ~ '^42501:', 'and so it does as the authenticator itself');

rollback;
