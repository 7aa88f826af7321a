-- The cluster-wide roles signalbox's schema grants to. Roles are not part of
-- a database's dump: run this on a new cluster BEFORE restoring a dump into
-- it (README, "Backup and restore"), or the restored GRANTs to the request
-- role fail and the service answers 403 to everyone.
--
--   psql -X -v visitor=signalbox_visitor -v owner=signalbox -f db/roles.sql "$NEW_CLUSTER_URL"
--
-- visitor: DATABASE_VISITOR (default signalbox_visitor), the role API
-- requests run as: NOLOGIN, no BYPASSRLS. owner: the role the service
-- connects as (DATABASE_URL's user), which switches to the visitor per
-- request and so must be a member of it. Idempotent.
\set ON_ERROR_STOP 1
\if :{?visitor}
\else
  \set visitor signalbox_visitor
\endif
\if :{?owner}
\else
  select current_user as owner \gset
\endif
select format('create role %I nologin', :'visitor')
 where not exists (select 1 from pg_roles where rolname = :'visitor') \gexec
select format('create role %I login', :'owner')
 where not exists (select 1 from pg_roles where rolname = :'owner') \gexec
select format('grant %I to %I', :'visitor', :'owner') \gexec
