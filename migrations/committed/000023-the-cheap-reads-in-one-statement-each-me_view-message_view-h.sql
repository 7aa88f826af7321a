--! Previous: sha1:b7c8c3c8303753e6976c3c3f232135d68d9e7c75
--! Hash: sha1:cc90436c778136bf678d195826a33902fcee8254
--! Message: The cheap reads in one statement each: me_view, message_view, history_view, inbox_page, notifications_page answer the API's JSON text and set the caller themselves

-- The cheap reads in one statement each: GET /me, GET /messages/:id,
-- GET /messages/:id/history, GET /inbox/unread and GET /notifications.
--
-- Each was four round trips (BEGIN; the role, the caller and the request
-- id; the query; COMMIT) and its rows were decoded into objects in Node and
-- serialised again: at 4 connections they ran at 23-29 % of what PostgreSQL
-- does with the same statements (bench:ceiling), the time going to Node's
-- side of the round trips. Like the conversation page (migration 000013)
-- and the list (000020), each is now one function that sets the request
-- role and the caller for its own statement and answers the API's JSON
-- text, which Node passes through. Row-level security applies exactly as
-- before (the role is the visitor's); the explicit visibility filters stay
-- too (defence in depth, and what the plans are made from). The SQL of each
-- is the query it replaces (src/queries), moved here.
--
-- Not SECURITY DEFINER: set_config('role', ...) may not be called from one,
-- and the caller (the authenticator, a member of the visitor role) is who
-- switches to the visitor for the statement.

create function app_public.me_view(visitor text, caller bigint) returns text
  language plpgsql volatile
as $$
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  return (select json_build_object('id', u.id, 'username', u.username, 'displayName', u.display_name,
                                   'createdAt', app_public.api_time(u.created_at), 'isModerator', u.is_moderator)::text
            from app_public.users u
           where u.id = caller);
end;
$$;
comment on function app_public.me_view(text, bigint) is
  'GET /me in one statement: sets the request role and the caller (transaction-locally) and answers the user as the API''s JSON text; null when the account is gone.';

create function app_public.message_view(visitor text, caller bigint, message_id bigint) returns text
  language plpgsql volatile
as $$
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  return (select app_public.message_json(m)::text
            from app_public.messages m
           where m.id = message_id
             and (app_public.is_participant(m.sender_id, m.receiver_id, caller)
                  or app_public.reads_group_message(m.group_id, m.group_seq, caller)));
end;
$$;
comment on function app_public.message_view(text, bigint, bigint) is
  'GET /messages/:id in one statement: the message as the API''s JSON text, or null when the caller cannot read it (row-level security as the visitor, and the same rule explicitly).';

create function app_public.history_view(visitor text, caller bigint, message_id bigint) returns text
  language plpgsql volatile
as $$
declare
  visible boolean;
  versions text;
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  select true into visible
    from app_public.messages m
   where m.id = message_id
     and (app_public.is_participant(m.sender_id, m.receiver_id, caller)
          or app_public.reads_group_message(m.group_id, m.group_seq, caller));
  if visible is null then
    return null;
  end if;
  select coalesce(json_agg(json_build_object('oldContent', h.old_content, 'editedAt', app_public.api_time(h.edited_at),
                                             'editedBy', h.edited_by) order by h.id desc), '[]')::text
    into versions
    from app_public.message_history h
   where h.message_id = history_view.message_id;
  return '{"messageId":' || message_id || ',"versions":' || versions || '}';
end;
$$;
comment on function app_public.history_view(text, bigint, bigint) is
  'GET /messages/:id/history in one statement: {messageId, versions} (newest first) as the API''s JSON text, or null when the caller cannot read the message.';

-- A page's JSON text from its items (already JSON, one past the page to
-- know whether another follows) and their keys: {"<key>":[...]<head>,
-- "nextCursor":...}. The pages' one shape, built once.
create function app_public.page_json(items_key text, ids bigint[], items text[], page_size int, head text default '')
  returns text
  language sql immutable
as $$
  select '{"' || items_key || '":[' || coalesce(array_to_string(items[1:page_size], ','), '') || ']' || head
         || ',"nextCursor":' || case when cardinality(ids) > page_size then ids[page_size]::text else 'null' end || '}'
$$;
comment on function app_public.page_json(text, bigint[], text[], int, text) is
  'A page as the API''s JSON text: the first page_size items under items_key, head (more fields, e.g. ,"unreadCount":3), and nextCursor (the last item''s key when one more item was read, else null).';

create function app_public.inbox_page(visitor text, caller bigint, before bigint, page_size int) returns text
  language plpgsql volatile
as $$
declare
  unread bigint;
  ids bigint[];
  items text[];
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  -- The literal `read = false` (never a parameter) matches the partial
  -- index messages_unread_inbox_idx, for the count and the page alike.
  select count(*) into unread
    from app_public.messages m
   where m.receiver_id = caller and m.read = false and m.deleted_at is null;
  select array_agg(p.id order by p.id desc), array_agg(p.item order by p.id desc)
    into ids, items
    from (
      select m.id,
             json_build_object('id', m.id, 'senderId', m.sender_id, 'senderUsername', u.username,
                               'parentMessageId', m.parent_message_id, 'preview', coalesce(left(m.content, 200), ''),
                               'sentAt', app_public.api_time(m.sent_at))::text as item
        from app_public.messages m
        join app_public.users u on u.id = m.sender_id
       where m.receiver_id = caller and m.read = false and m.deleted_at is null
         and m.id < coalesce(before, 9223372036854775807)
       order by m.id desc
       limit page_size + 1
    ) p;
  return app_public.page_json('messages', ids, items, page_size, ',"unreadCount":' || unread);
end;
$$;
comment on function app_public.inbox_page(text, bigint, bigint, int) is
  'GET /inbox/unread in one statement: {messages, unreadCount, nextCursor} as the API''s JSON text, from the partial index messages_unread_inbox_idx.';

create function app_public.notifications_page(visitor text, caller bigint, unread_only boolean, before bigint, page_size int)
  returns text
  language plpgsql volatile
as $$
declare
  unread bigint;
  ids bigint[];
  items text[];
begin
  perform set_config('role', visitor, true),
          set_config('signalbox.user_id', caller::text, true);
  select count(*) into unread
    from app_public.notifications n
   where n.user_id = caller and n.read_at is null;
  select array_agg(p.id order by p.id desc), array_agg(p.item order by p.id desc)
    into ids, items
    from (
      select n.id,
             json_build_object('id', n.id, 'kind', n.kind, 'messageId', n.message_id, 'senderId', m.sender_id,
                               'groupId', m.group_id, 'preview', coalesce(left(m.content, 200), ''),
                               'createdAt', app_public.api_time(n.created_at),
                               'readAt', app_public.api_time(n.read_at))::text as item
        from app_public.notifications n
        join app_public.messages m on m.id = n.message_id
       where n.user_id = caller
         and (not unread_only or n.read_at is null)
         and n.id < coalesce(before, 9223372036854775807)
       order by n.id desc
       limit page_size + 1
    ) p;
  return app_public.page_json('notifications', ids, items, page_size, ',"unreadCount":' || unread);
end;
$$;
comment on function app_public.notifications_page(text, bigint, boolean, bigint, int) is
  'GET /notifications in one statement: {notifications, unreadCount, nextCursor} as the API''s JSON text; unread_only for ?unread=true.';

-- Least privilege (migration 000018): these are the visitor's to call, and
-- the authenticator's through its membership; nobody else's.
revoke all on function app_public.page_json(text, bigint[], text[], int, text) from public;
revoke all on function app_public.me_view(text, bigint) from public;
revoke all on function app_public.message_view(text, bigint, bigint) from public;
revoke all on function app_public.history_view(text, bigint, bigint) from public;
revoke all on function app_public.inbox_page(text, bigint, bigint, int) from public;
revoke all on function app_public.notifications_page(text, bigint, boolean, bigint, int) from public;
grant execute on function app_public.page_json(text, bigint[], text[], int, text) to :DATABASE_VISITOR;
grant execute on function app_public.me_view(text, bigint) to :DATABASE_VISITOR;
grant execute on function app_public.message_view(text, bigint, bigint) to :DATABASE_VISITOR;
grant execute on function app_public.history_view(text, bigint, bigint) to :DATABASE_VISITOR;
grant execute on function app_public.inbox_page(text, bigint, bigint, int) to :DATABASE_VISITOR;
grant execute on function app_public.notifications_page(text, bigint, boolean, bigint, int) to :DATABASE_VISITOR;
