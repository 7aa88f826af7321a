-- The cluster-wide roles signalbox's schema grants to (README, "Roles").
-- Roles are not part of a database's dump: run this on a new cluster
-- BEFORE restoring a dump into it (README, "Backup and restore"), or the
-- restored GRANTs to the request role fail and the service answers 403 to
-- everyone. Run it as the owner (or a role with CREATEROLE):
--
--   psql -X -v visitor=signalbox_visitor -v authenticator=signalbox_authenticator -f db/roles.sql "$OWNER_URL"
--
-- visitor: DATABASE_VISITOR (default signalbox_visitor), the role API
-- requests run as: NOLOGIN, no BYPASSRLS. authenticator:
-- DATABASE_AUTHENTICATOR (default signalbox_authenticator), the role the
-- service logs in as (DATABASE_URL): LOGIN NOINHERIT, a member of the
-- visitor only, its logins starting as the visitor; give it a password
-- afterwards. owner: the role migrations run as (MIGRATE_DATABASE_URL),
-- a member of the visitor too (scripts and jobs take its part).
-- Idempotent.
\set ON_ERROR_STOP 1
\if :{?visitor}
\else
  \set visitor signalbox_visitor
\endif
\if :{?authenticator}
\else
  \set authenticator signalbox_authenticator
\endif
\if :{?owner}
\else
  select current_user as owner \gset
\endif
select format('create role %I nologin', :'visitor')
 where not exists (select 1 from pg_roles where rolname = :'visitor') \gexec
select format('create role %I login', :'owner')
 where not exists (select 1 from pg_roles where rolname = :'owner') \gexec
select format('create role %I login noinherit', :'authenticator')
 where not exists (select 1 from pg_roles where rolname = :'authenticator') \gexec
select format('grant %I to %I', :'visitor', :'owner') \gexec
select format('grant %I to %I', :'visitor', :'authenticator') \gexec
select format('alter role %I set role = %L', :'authenticator', :'visitor') \gexec
