-- Assertion helpers for the psql checks. Each check script \i's this file,
-- which opens the script's one transaction; the script rolls it back, so it
-- can be run by hand against any signalbox database, production data
-- included, without leaving anything behind:
--
--   npm run psql -- -f test/sql/01_notifications.sql
--   psql "$DATABASE_URL" -X -f test/sql/01_notifications.sql
--
-- The scripts touch only rows they create (their users' names carry a
-- random run tag, every UPDATE is scoped to their own users), change
-- settings only with SET LOCAL / set_config(…, true), and create these
-- helpers inside the transaction, so the rollback removes them too.
-- Every passing assertion prints "ok - …"; the first failing one raises
-- "not ok - …" and stops the script (ON_ERROR_STOP).
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only on
\pset pager off
\if :{?visitor}
\else
  \set visitor signalbox_visitor
\endif
begin;
set local client_min_messages = warning;
-- A tag for this run's usernames: never collides with real users.
select 'sbt' || substr(md5(random()::text || clock_timestamp()::text), 1, 8) as run \gset
-- Ids for the rows a script inserts as a DBA: negative, counting down from
-- a random start, so they never meet the identity sequences' (which a
-- rollback does not give back) and two runs at once do not collide. Rows
-- inserted as the request role (as the API does) take identity values:
-- that role may not choose ids, and neither may the API.
select (-1 - floor(random() * 1e12) * 1e6)::bigint as run_ids_from \gset
create temp sequence run_ids increment by -1 minvalue -9223372036854775807 maxvalue -1 start with :run_ids_from;

create function pg_temp.ok(_condition boolean, _description text) returns text
  language plpgsql volatile as $$
begin
  if _condition is not true then
    raise exception 'not ok - %', _description;
  end if;
  return 'ok - ' || _description;
end;
$$;

create function pg_temp.is(_got anyelement, _want anyelement, _description text) returns text
  language plpgsql volatile as $$
begin
  if _got is distinct from _want then
    raise exception 'not ok - %: got %, want %', _description, _got, _want;
  end if;
  return 'ok - ' || _description;
end;
$$;

-- Runs _sql in a subtransaction and expects it to fail with SQLSTATE _state.
create function pg_temp.throws(_sql text, _state text, _description text) returns text
  language plpgsql volatile as $$
begin
  begin
    execute _sql;
  exception when others then
    if sqlstate = _state then
      return 'ok - ' || _description;
    end if;
    raise exception 'not ok - %: raised % (%), want %', _description, sqlstate, sqlerrm, _state;
  end;
  raise exception 'not ok - %: no error, want %', _description, _state;
end;
$$;

-- Acts as a signalbox user the way the API does: the request role plus the
-- transaction-local user id. reset role ends it.
create function pg_temp.act_as(_user_id bigint) returns void
  language sql volatile as $$
  select set_config('signalbox.user_id', _user_id::text, true);
$$;

-- Back to a DBA: no signalbox user for the rest of the transaction (reset
-- role alone would leave the last act_as() in force).
create function pg_temp.as_dba() returns void
  language sql volatile as $$
  select set_config('signalbox.user_id', '', true);
$$;

grant execute on function pg_temp.ok(boolean, text) to public;
grant execute on function pg_temp.is(anyelement, anyelement, text) to public;
grant execute on function pg_temp.throws(text, text, text) to public;
grant execute on function pg_temp.act_as(bigint) to public;
grant execute on function pg_temp.as_dba() to public;

-- Runs _sql in a subtransaction and returns 'SQLSTATE: message' of the error
-- it raises (NULL when it raises none), for checks on what an error says.
create function pg_temp.error_of(_sql text) returns text
  language plpgsql volatile as $$
begin
  execute _sql;
  return null;
exception when others then
  return sqlstate || ': ' || sqlerrm;
end;
$$;
grant execute on function pg_temp.error_of(text) to public;
