-- Three users of this run (their names carry the run tag, so they never
-- collide with real ones): :alice, :bob and :carol hold their ids.
insert into app_public.users (id, username) overriding system value
values (nextval('run_ids'), :'run' || '_alice'), (nextval('run_ids'), :'run' || '_bob'), (nextval('run_ids'), :'run' || '_carol');
select id as alice from app_public.users where username = :'run' || '_alice' \gset
select id as bob from app_public.users where username = :'run' || '_bob' \gset
select id as carol from app_public.users where username = :'run' || '_carol' \gset
