-- plan: 8
-- What a DBA sees with \d+ and \df+: every object of the schema says why it
-- exists.
\i test/sql/_assert.sql

select pg_temp.is(
  (select string_agg(c.relname, ', ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('app_public', 'app_private') and c.relkind = 'r'
      and obj_description(c.oid, 'pg_class') is null),
  null, 'every table has a comment');
select pg_temp.is(
  (select string_agg(c.relname, ', ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_index i on i.indexrelid = c.oid
    where n.nspname = 'app_public' and c.relkind = 'i' and not i.indisprimary
      and obj_description(c.oid, 'pg_class') is null
      and not exists (select 1 from pg_constraint k where k.conindid = c.oid and obj_description(k.oid, 'pg_constraint') is not null)),
  null, 'every secondary index has a comment');
select pg_temp.is(
  (select string_agg(p.proname, ', ') from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('app_public', 'app_private') and obj_description(p.oid, 'pg_proc') is null),
  null, 'every function has a comment');
select pg_temp.is(
  (select string_agg(t.tgname, ', ') from pg_trigger t join pg_class c on c.oid = t.tgrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'app_public' and not t.tgisinternal and obj_description(t.oid, 'pg_trigger') is null),
  null, 'every trigger has a comment');
select pg_temp.is(
  (select string_agg(p.proname, ', ') from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('app_public', 'app_private') and p.prorettype = 'trigger'::regtype and p.provolatile <> 'v'),
  null, 'every trigger function is VOLATILE (it sees the rows its own statement wrote: multi-row imports work)');
select pg_temp.is(
  (select string_agg(pol.polname, ', ') from pg_policy pol
    where obj_description(pol.oid, 'pg_policy') is null),
  null, 'every policy has a comment');
select pg_temp.is(
  (select string_agg(c.relname, ', ') from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'app_public' and c.relkind = 'r' and not c.relrowsecurity),
  null, 'row-level security is on for every app_public table');
select pg_temp.is(
  (select string_agg(format('%s.%s', k.conrelid::regclass, a.attname), ', ')
     from pg_constraint k
     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
    where k.contype = 'f'
      and k.connamespace in ('app_public'::regnamespace, 'app_private'::regnamespace)
      and not exists (select 1 from pg_index i where i.indrelid = k.conrelid and i.indkey[0] = k.conkey[1])),
  null, 'every foreign-key column leads an index (cascades never scan)');

rollback;
