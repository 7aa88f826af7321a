-- Assertion helpers for the psql checks. Each check script \i's this file,
-- runs in one transaction and rolls back, so it can be run by hand against
-- any signalbox database without leaving anything behind:
--
--   psql "$DATABASE_URL" -X -f test/sql/01_notifications.sql
--
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
set client_min_messages = warning;

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

grant execute on function pg_temp.ok(boolean, text) to public;
grant execute on function pg_temp.is(anyelement, anyelement, text) to public;
grant execute on function pg_temp.throws(text, text, text) to public;
grant execute on function pg_temp.act_as(bigint) to public;
