/**
 * Safety and data rights (migration 000021, docs/safety.md): unsend,
 * reports, moderation and suspension, from the API. The same rules from
 * psql: test/sql/14_safety.sql.
 */
import t from 'tap';
import { buildTestApp, call, listen, send, signUp, type Session } from './helpers/app';
import { adminClient } from './helpers/db';
import { openStream } from './helpers/sse';

const password = 'correct horse battery';

t.test('unsend: the sender\'s message becomes a tombstone, replies stay, every copy of the words goes', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const marker = 'zebracorn-marker-41';
  const first = await send(app, ann, { receiverId: bob.id, content: `draft ${marker}` });
  await call(app, ann, 'PATCH', `/messages/${first.id}`, { content: `final ${marker}` });
  const reply = await send(app, bob, { parentMessageId: first.id, content: 'a reply that stays' });
  t.equal((await call(app, bob, 'POST', `/messages/${first.id}/report`, { reason: 'spam' })).statusCode, 201, 'bob reports it (a snapshot is taken)');

  t.equal((await call(app, bob, 'DELETE', `/messages/${first.id}`)).statusCode, 403, 'the receiver cannot unsend it');
  t.equal((await call(app, cid, 'DELETE', `/messages/${first.id}`)).statusCode, 404, 'a stranger: 404');
  t.equal((await call(app, ann, 'DELETE', `/messages/${first.id}`)).statusCode, 204, 'the sender unsends it');
  t.equal((await call(app, ann, 'DELETE', `/messages/${first.id}`)).statusCode, 204, 'again: 204');

  const tomb = (await call(app, bob, 'GET', `/messages/${first.id}`)).json();
  t.match(tomb, { id: first.id, content: null, deletedAt: /Z$/, replyCount: 1 }, 'a tombstone: no content, deletedAt set, its reply counted');
  const thread = (await call(app, bob, 'GET', `/messages/${reply.id}/thread`)).json();
  t.equal(thread.root.replies[0].id, reply.id, 'the reply stays attached');
  t.strictSame((await call(app, bob, 'GET', `/messages/${first.id}/history`)).json().versions, [], 'no history');
  t.equal((await call(app, bob, 'GET', `/search?q=${marker}`)).json().results.length, 0, 'no search hit');
  const notices = (await call(app, bob, 'GET', '/notifications')).json().notifications as { messageId: number; preview: string; readAt: string | null }[];
  t.match(notices.find((n) => n.messageId === first.id), { preview: '', readAt: /Z$/ }, 'its notification: no preview, read');
  t.equal((await call(app, bob, 'GET', '/inbox/unread')).json().messages.some((m: { id: number }) => m.id === first.id), false, 'not in the unread inbox');
  const edit = await call(app, ann, 'PATCH', `/messages/${first.id}`, { content: 'back again' });
  t.equal(edit.statusCode, 422, 'a tombstone cannot be edited back');

  // The marker, anywhere in the database: every text-ish column of every table.
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ found: string[] | null }>(`
    select array_agg(distinct format('%s.%s', c.table_schema, c.table_name)) as found
      from information_schema.columns c
     where c.table_schema in ('app_public', 'app_private')
       and c.data_type in ('text', 'character varying', 'json', 'jsonb', 'tsvector', 'ARRAY')
       and exists (select 1 from pg_class k where k.oid = format('%I.%I', c.table_schema, c.table_name)::regclass and k.relkind = 'r')
       and (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I where %I::text ilike %L',
              c.table_schema, c.table_name, c.column_name, '%zebracorn%'), false, true, '')))[1]::text::int > 0`);
  t.strictSame(rows[0]!.found, null, 'no copy of the words anywhere (history, search, reports, events)');
});

t.test('unsend reaches both streams as message.deleted, on the delivery cursor', async (t) => {
  const { app } = await buildTestApp(t);
  const base = await listen(app);
  const [ann, bob] = [await signUp(app, 'ann'), await signUp(app, 'bob')];
  const m = await send(app, ann, { receiverId: bob.id, content: 'soon gone' });
  const stream = await openStream(`${base}/notifications/stream?types=message.deleted`, { authorization: `Bearer ${bob.token}`, 'last-event-id': 's0' });
  t.teardown(() => stream.close());
  await call(app, ann, 'DELETE', `/messages/${m.id}`);
  const [event] = await stream.waitFor(1, 5000);
  t.equal(event!.event, 'message.deleted');
  t.match(JSON.parse(event!.data), { count: 1, messages: [{ id: m.id, content: null, deletedAt: /Z$/ }] }, 'the tombstone, without the words');
});

async function moderator(t: Parameters<typeof adminClient>[0], url: string, who: Session): Promise<void> {
  const admin = await adminClient(t, url);
  await admin.query('update app_public.users set is_moderator = true where id = $1', [who.id]);
}

t.test('reports: readers report once, the snapshot survives edits; moderators see and resolve; everyone else 403', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid, mod] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid'), await signUp(app, 'mod')];
  await moderator(t, db.url, mod);
  t.equal((await call(app, mod, 'GET', '/me')).json().isModerator, true, '/me says who moderates');
  t.equal((await call(app, bob, 'GET', '/me')).json().isModerator, false);
  const rude = await send(app, ann, { receiverId: bob.id, content: 'something rude' });
  const report = await call(app, bob, 'POST', `/messages/${rude.id}/report`, { reason: '  insulting  ' });
  t.equal(report.statusCode, 201);
  t.match(report.json(), { messageId: rude.id, reason: 'insulting', status: 'open', action: null });
  t.equal((await call(app, bob, 'POST', `/messages/${rude.id}/report`, { reason: 'again' })).json().code, 'ALREADY_REPORTED', 'once per reporter');
  t.equal((await call(app, cid, 'POST', `/messages/${rude.id}/report`, { reason: 'x' })).statusCode, 404, 'a stranger cannot report what they cannot read');
  t.equal((await call(app, ann, 'POST', `/messages/${rude.id}/report`, { reason: 'x' })).json().code, 'OWN_MESSAGE', 'nor the sender their own');
  for (const reason of ['', '   ', 'a'.repeat(1001), 'nul\u0000']) {
    t.equal((await call(app, bob, 'POST', `/messages/${rude.id}/report`, { reason })).statusCode, 400, `reason ${JSON.stringify(reason).slice(0, 20)}: 400`);
  }
  await call(app, ann, 'PATCH', `/messages/${rude.id}`, { content: 'something polite' });

  const exported = (await call(app, bob, 'GET', '/me/export')).body.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; report?: object; counts?: object });
  t.match(exported.filter((l) => l.type === 'report'), [{ report: { id: report.json().id, messageId: rude.id, reason: 'insulting', status: 'open' } }], 'the reporter\'s export holds the report');
  t.match(exported.at(-1), { type: 'end', counts: { reports: 1 } });
  t.notOk(JSON.stringify(exported.filter((l) => l.type === 'report')).includes('something rude'), 'without the reported words');
  t.equal((await call(app, bob, 'GET', '/moderation/reports')).statusCode, 403, 'a user cannot see the queue');
  const queue = (await call(app, mod, 'GET', '/moderation/reports')).json().reports;
  t.match(queue, [{ id: report.json().id, contentSnapshot: 'something rude', reporter: { id: bob.id }, reportedUser: { id: ann.id, suspended: false }, messageDeleted: false }],
    'the moderator sees the words as reported, not as edited since');
  t.equal((await call(app, bob, 'POST', `/moderation/reports/${report.json().id}/resolve`, { action: 'dismiss' })).statusCode, 403, 'a user cannot resolve');
  t.equal((await call(app, mod, 'POST', `/moderation/reports/${report.json().id}/resolve`, { action: 'ban' })).statusCode, 400, 'an unknown action: 400');
  const resolved = await call(app, mod, 'POST', `/moderation/reports/${report.json().id}/resolve`, { action: 'dismiss' });
  t.match(resolved.json(), { status: 'resolved', action: 'dismiss' });
  t.equal((await call(app, mod, 'POST', `/moderation/reports/${report.json().id}/resolve`, { action: 'dismiss' })).json().code, 'ALREADY_RESOLVED');
  t.equal((await call(app, mod, 'POST', '/moderation/reports/999999999/resolve', { action: 'dismiss' })).statusCode, 404);
  t.strictSame((await call(app, mod, 'GET', '/moderation/reports')).json().reports, [], 'the queue is empty');

  // delete_message: the message becomes a tombstone, as if unsent.
  const worse = await send(app, ann, { receiverId: bob.id, content: 'something worse' });
  const r2 = (await call(app, bob, 'POST', `/messages/${worse.id}/report`, { reason: 'threat' })).json();
  await call(app, mod, 'POST', `/moderation/reports/${r2.id}/resolve`, { action: 'delete_message' });
  t.match((await call(app, bob, 'GET', `/messages/${worse.id}`)).json(), { content: null, deletedAt: /Z$/ }, 'delete_message unsends it');
  const admin = await adminClient(t, db.url);
  const audit = await admin.query<{ action: string; moderator_id: string; target_user_id: string }>(
    'select action, moderator_id, target_user_id from app_private.moderation_actions order by id');
  t.strictSame(audit.rows.map((a) => [a.action, Number(a.moderator_id), Number(a.target_user_id)]),
    [['dismiss', mod.id, ann.id], ['delete_message', mod.id, ann.id]], 'every action is audited for a DBA');
});

t.test('suspend_user: no sign-in, no send, sessions and streams end on every instance', async (t) => {
  const one = await buildTestApp(t);
  const two = await buildTestApp(t, { shareWith: one });
  const base2 = await listen(two.app);
  const [ann, bob, mod] = [await signUp(one.app, 'ann'), await signUp(one.app, 'bob'), await signUp(one.app, 'mod')];
  await moderator(t, one.db.url, mod);
  const bad = await send(one.app, ann, { receiverId: bob.id, content: 'abuse' });
  const stream = await openStream(`${base2}/notifications/stream`, { authorization: `Bearer ${ann.token}` });
  t.teardown(() => stream.close());
  t.equal((await call(two.app, ann, 'GET', '/me')).statusCode, 200, 'ann is signed in on instance two');

  const report = (await call(one.app, bob, 'POST', `/messages/${bad.id}/report`, { reason: 'abuse' })).json();
  t.match((await call(one.app, mod, 'POST', `/moderation/reports/${report.id}/resolve`, { action: 'suspend_user' })).json(), { action: 'suspend_user' });
  await Promise.race([stream.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open')), 8000))]);
  t.pass('ann\'s stream on instance two ended');
  t.equal((await call(two.app, ann, 'GET', '/me')).statusCode, 401, 'her session is gone on instance two');
  const login = await one.app.inject({ method: 'POST', url: '/auth/login', payload: { username: ann.username, password } });
  t.equal(login.statusCode, 403, 'she cannot sign in');
  t.equal(login.json().code, 'ACCOUNT_SUSPENDED');
  const wrong = await one.app.inject({ method: 'POST', url: '/auth/login', payload: { username: ann.username, password: 'not her password' } });
  t.equal(wrong.statusCode, 401, 'a wrong password learns nothing of the suspension');
  const admin = await adminClient(t, one.db.url);
  const refused = await admin.query(`insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, 'x')`, [ann.id, bob.id])
    .then(() => 'stored', (e: { code?: string }) => e.code);
  t.equal(refused, 'SB011', 'she cannot send, even through psql');
});
