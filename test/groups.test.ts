/**
 * Group conversations (migration 000020, docs/groups.md): every rule the
 * direct messages keep, from the API. The same rules from psql are in
 * test/sql/13_groups.sql; delivery under concurrency in
 * test/group-delivery.test.ts.
 */
import t from 'tap';
import { buildTestApp, call, send, signUp, type Session } from './helpers/app';
import { adminClient } from './helpers/db';
import type { FastifyInstance } from 'fastify';

type Group = { id: number; title: string; managerId: number; members: { userId: number; role: string }[]; readPosition: number; lastPosition: number };

async function createGroup(app: FastifyInstance, owner: Session, title: string, members: Session[]): Promise<Group> {
  const res = await call(app, owner, 'POST', '/groups', { title, memberIds: members.map((m) => m.id) });
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

const ids = (res: { json(): { messages: { id: number }[] } }) => res.json().messages.map((m) => m.id);

t.test('create, read, rename, add: the creator owns the group; non-members see nothing', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid, dan] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid'), await signUp(app, 'dan')];
  const created = await call(app, ann, 'POST', '/groups', { title: '  Climbing  ', memberIds: [bob.id, bob.id, ann.id] });
  t.equal(created.statusCode, 201);
  const group = created.json() as Group;
  t.match(group, { title: 'Climbing', kind: 'group', managerId: ann.id, readPosition: 0, lastPosition: 0 }, 'title trimmed, the creator manages');
  t.strictSame(group.members.map((m) => [m.userId, m.role]), [[ann.id, 'owner'], [bob.id, 'member']], 'the creator is the owner; duplicates and the creator skipped');

  t.equal((await call(app, bob, 'GET', `/groups/${group.id}`)).statusCode, 200, 'a member reads it');
  const outsider = await call(app, cid, 'GET', `/groups/${group.id}`);
  t.equal(outsider.statusCode, 404, 'a non-member gets 404');
  t.equal((await call(app, cid, 'GET', '/groups/999999999')).statusCode, 404, 'as for a group that does not exist');

  t.equal((await call(app, bob, 'PATCH', `/groups/${group.id}`, { title: 'mine' })).statusCode, 403, 'a member may not rename');
  t.equal((await call(app, cid, 'PATCH', `/groups/${group.id}`, { title: 'mine' })).statusCode, 404, 'a non-member: 404');
  const renamed = await call(app, ann, 'PATCH', `/groups/${group.id}`, { title: 'Bouldering' });
  t.equal(renamed.json().title, 'Bouldering', 'the owner renames');

  t.equal((await call(app, bob, 'POST', `/groups/${group.id}/members`, { userId: cid.id })).statusCode, 403, 'a member may not add');
  t.equal((await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: cid.id })).statusCode, 204, 'the owner adds');
  t.equal((await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: cid.id })).statusCode, 204, 'again: nothing changes');
  const unknown = await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: 999999999 });
  t.equal(unknown.statusCode, 404, 'an unknown user: 404');
  t.equal((await call(app, ann, 'GET', `/groups/${group.id}`)).json().members.length, 3, 'three members');
  t.equal((await call(app, dan, 'POST', '/groups', { title: 'x', memberIds: [999999999] })).statusCode, 404, 'creating with an unknown member: 404');
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from app_public.conversations where kind = 'group'`);
  t.equal(rows[0]!.n, 1, 'the refused creation left no group behind');
});

t.test('hostile input to the group routes: 400s, nothing written', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const ann = await signUp(app, 'ann');
  for (const body of [{}, { title: '' }, { title: '   ' }, { title: 'x'.repeat(101) }, { title: 'a\u0000b' }, { title: 1 },
    { title: 'ok', memberIds: 'all' }, { title: 'ok', memberIds: [-1] }, { title: 'ok', memberIds: [1.5] },
    { title: 'ok', memberIds: Array.from({ length: 1000 }, (_, i) => i + 1) }, { title: 'ok', extra: true }]) {
    t.equal((await call(app, ann, 'POST', '/groups', body)).statusCode, 400, JSON.stringify(body).slice(0, 60));
  }
  t.equal((await call(app, null, 'POST', '/groups', { title: 'x' })).statusCode, 401, 'signed out');
  t.equal((await call(app, ann, 'GET', '/groups/abc')).statusCode, 400);
  t.equal((await call(app, ann, 'GET', `/groups/1'%20or%201=1`)).statusCode, 400);
  const both = await call(app, ann, 'POST', '/messages', { receiverId: ann.id, groupId: 1, content: 'x' });
  t.equal(both.statusCode, 400, 'a receiver and a group: 400');
  t.equal((await call(app, ann, 'GET', '/conversations')).json().conversations.length, 0, 'nothing was created');
});

t.test('sending to a group: members only; every member but the sender is notified once; replies stay in the group', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid, eve] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid'), await signUp(app, 'eve')];
  const group = await createGroup(app, ann, 'Trip', [bob, cid]);
  const first = await send(app, ann, { groupId: group.id, content: 'hello all' });
  t.match(first, { groupId: group.id, receiverId: null, senderId: ann.id }, 'a group message has a group and no receiver');

  const outsider = await call(app, eve, 'POST', '/messages', { groupId: group.id, content: 'let me in' });
  t.equal(outsider.statusCode, 404, 'a non-member cannot send: the group does not exist for them');
  t.equal((await call(app, eve, 'POST', '/messages', { groupId: 999999999, content: 'x' })).statusCode, 404, 'nor to a group that does not exist');

  const reply = await send(app, bob, { parentMessageId: first.id, content: 'hi ann' });
  t.equal(reply.groupId, group.id, 'a reply goes to its parent\'s group');
  const astray = await call(app, bob, 'POST', '/messages', { parentMessageId: first.id, receiverId: ann.id, content: 'psst' });
  t.equal(astray.statusCode, 422, 'a reply to a group message cannot go to a receiver');
  t.equal((await call(app, eve, 'POST', '/messages', { parentMessageId: first.id, content: 'me too' })).statusCode, 404, 'a non-member cannot reply');
  t.equal((await call(app, eve, 'GET', `/messages/${first.id}`)).statusCode, 404, 'nor read it');
  t.equal((await call(app, eve, 'GET', `/messages/${first.id}/thread`)).statusCode, 404, 'nor its thread');
  const thread = await call(app, cid, 'GET', `/messages/${first.id}/thread`);
  t.equal(thread.json().root.replies[0].id, reply.id, 'a member reads the thread');
  t.equal((await call(app, cid, 'POST', `/messages/${first.id}/read`)).statusCode, 403, 'a group message has no receiver to mark it read');

  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ message_id: string; user_id: string }>(
    'select message_id, user_id from app_public.notifications order by message_id, user_id');
  t.strictSame(rows.map((r) => [Number(r.message_id), Number(r.user_id)]),
    [[first.id, bob.id], [first.id, cid.id], [reply.id, ann.id], [reply.id, cid.id]], 'one notification per member but the sender');
  const notices = await call(app, cid, 'GET', '/notifications');
  t.equal(notices.json().notifications.length, 2, 'cid sees both in their notifications');
  const seqs = await admin.query<{ user_id: string; n: number }>(
    `select user_id, count(*)::int as n from app_public.live_events where type = 'message.created' group by 1 order by 1`);
  t.strictSame(seqs.rows.map((r) => [Number(r.user_id), r.n]), [[ann.id, 2], [bob.id, 2], [cid.id, 2]], 'message.created reaches every member, the sender\'s own clients too');
});

t.test('periods: a new member sees what is sent after joining; a leaver keeps what came before and nothing after; a rejoin opens a new period', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const group = await createGroup(app, ann, 'Book club', [bob]);
  const before = await send(app, ann, { groupId: group.id, content: 'before cid' });
  await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: cid.id });
  const during = await send(app, bob, { groupId: group.id, content: 'while cid is in' });
  t.strictSame(ids(await call(app, cid, 'GET', `/groups/${group.id}/messages`)), [during.id], 'cid sees what came after joining only');
  t.equal((await call(app, cid, 'GET', `/messages/${before.id}`)).statusCode, 404, 'not the earlier message, by id either');

  t.equal((await call(app, cid, 'DELETE', `/groups/${group.id}/members/${cid.id}`)).statusCode, 204, 'cid leaves');
  t.equal((await call(app, cid, 'DELETE', `/groups/${group.id}/members/${cid.id}`)).statusCode, 404, 'leaving twice: 404');
  const after = await send(app, ann, { groupId: group.id, content: 'after cid left secretword' });
  t.strictSame(ids(await call(app, cid, 'GET', `/groups/${group.id}/messages`)), [during.id], 'the leaver keeps what came before, nothing after');
  t.equal((await call(app, cid, 'GET', `/messages/${after.id}`)).statusCode, 404, 'nor by id');
  t.equal((await call(app, cid, 'GET', '/search?q=secretword')).json().results.length, 0, 'nor by search');
  t.equal((await call(app, bob, 'GET', '/search?q=secretword')).json().results.length, 1, 'a member finds it');
  t.equal((await call(app, cid, 'GET', `/groups/${group.id}`)).statusCode, 404, 'the group itself is for members only');
  t.equal((await call(app, cid, 'POST', '/messages', { groupId: group.id, content: 'hello?' })).statusCode, 404, 'a leaver cannot send');

  await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: cid.id });
  const back = await send(app, bob, { groupId: group.id, content: 'welcome back' });
  t.strictSame(ids(await call(app, cid, 'GET', `/groups/${group.id}/messages`)), [back.id, during.id], 'a rejoin: the new period and the old, not the gap');
});

t.test('removal, ownership and the last member: the manager removes; an owner\'s leave hands over; the last leave deletes the group', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const group = await createGroup(app, ann, 'Band', [bob, cid]);
  t.equal((await call(app, bob, 'DELETE', `/groups/${group.id}/members/${cid.id}`)).statusCode, 403, 'a member may not remove another');
  t.equal((await call(app, ann, 'DELETE', `/groups/${group.id}/members/${cid.id}`)).statusCode, 204, 'the owner removes cid');
  await send(app, bob, { groupId: group.id, content: 'just us' });
  t.equal((await call(app, ann, 'DELETE', `/groups/${group.id}/members/${ann.id}`)).statusCode, 204, 'the owner leaves');
  const left = await call(app, bob, 'GET', `/groups/${group.id}`);
  t.equal(left.json().managerId, bob.id, 'the longest-standing member manages it now');
  t.equal((await call(app, bob, 'PATCH', `/groups/${group.id}`, { title: 'Duo' })).statusCode, 200, 'and may rename it');
  t.equal((await call(app, bob, 'DELETE', `/groups/${group.id}/members/${bob.id}`)).statusCode, 204, 'the last member leaves');
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ groups: number; messages: number }>(
    `select (select count(*)::int from app_public.conversations where id = $1) as groups,
            (select count(*)::int from app_public.messages where group_id = $1) as messages`, [group.id]);
  t.strictSame(rows[0], { groups: 0, messages: 0 }, 'the group went with its messages');
});

t.test('edits keep history for members; unread counts come from the read position; the conversation list mixes groups and direct', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const group = await createGroup(app, ann, 'Team', [bob, cid]);
  const m1 = await send(app, ann, { groupId: group.id, content: 'draft' });
  t.equal((await call(app, bob, 'PATCH', `/messages/${m1.id}`, { content: 'mine now' })).statusCode, 403, 'only the sender edits');
  t.equal((await call(app, ann, 'PATCH', `/messages/${m1.id}`, { content: 'final' })).statusCode, 200);
  const history = await call(app, cid, 'GET', `/messages/${m1.id}/history`);
  t.strictSame(history.json().versions.map((v: { oldContent: string }) => v.oldContent), ['draft'], 'a member reads the history');
  await send(app, ann, { groupId: group.id, content: 'second' });
  await send(app, cid, { groupId: group.id, content: 'third, from cid' });
  await send(app, cid, { receiverId: bob.id, content: 'direct to bob' });

  const list = (await call(app, bob, 'GET', '/conversations')).json().conversations as {
    kind: string; group: { id: number } | null; user: { id: number } | null; unreadCount: number; lastMessage: { content: string };
  }[];
  t.strictSame(list.map((c) => [c.kind, c.kind === 'group' ? c.group!.id : c.user!.id, c.unreadCount, c.lastMessage.content]), [
    ['direct', cid.id, 1, 'direct to bob'],
    ['group', group.id, 3, 'third, from cid'],
  ], 'newest first, direct and group together, each with its unread count');
  const first = (await call(app, bob, 'GET', '/conversations?limit=1')).json();
  t.equal(first.conversations[0].kind, 'direct', 'a page of one: the newest');
  const second = (await call(app, bob, 'GET', `/conversations?limit=1&before=${first.nextCursor}`)).json();
  t.strictSame([second.conversations.map((c: { kind: string }) => c.kind), second.nextCursor], [['group'], null], 'the cursor pages on to the group, the last');
  const cidList = (await call(app, cid, 'GET', '/conversations')).json().conversations as { kind: string; unreadCount: number }[];
  t.equal(cidList.find((c) => c.kind === 'group')!.unreadCount, 2, 'one\'s own messages are never unread');

  type Note = { groupId: number | null; readAt: string | null };
  const unreadNotes = async () => ((await call(app, bob, 'GET', '/notifications?unread=true')).json().notifications as Note[]);
  t.equal((await unreadNotes()).filter((n) => n.groupId === group.id).length, 3, 'each unread group message has its unread notification');
  t.equal((await call(app, bob, 'POST', `/groups/${group.id}/read`)).statusCode, 204);
  t.strictSame((await unreadNotes()).filter((n) => n.groupId === group.id), [], 'reading the group reads their notifications: one unread state, not two');
  t.equal((await unreadNotes()).length, 1, 'and no other notification (the direct message stays unread)');
  const after = (await call(app, bob, 'GET', '/conversations')).json().conversations as { kind: string; unreadCount: number }[];
  t.equal(after.find((c) => c.kind === 'group')!.unreadCount, 0, 'read up to the newest');
  t.equal((await call(app, bob, 'GET', `/groups/${group.id}`)).json().readPosition, 3, 'the read position is the newest message\'s');
  await send(app, ann, { groupId: group.id, content: 'fourth' });
  const again = (await call(app, bob, 'GET', '/conversations')).json().conversations as { kind: string; unreadCount: number }[];
  t.equal(again.find((c) => c.kind === 'group')!.unreadCount, 1, 'a new message is unread');
  const outsider = await signUp(app, 'out');
  t.equal((await call(app, outsider, 'POST', `/groups/${group.id}/read`)).statusCode, 404, 'a non-member cannot mark it read');
});

t.test('cached group pages: per member, evicted by a send, never shown to a non-member', async (t) => {
  const { app } = await buildTestApp(t, { live: true });
  const [ann, bob, eve] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'eve')];
  const group = await createGroup(app, ann, 'Cache', [bob]);
  const m1 = await send(app, ann, { groupId: group.id, content: 'one' });
  t.strictSame(ids(await call(app, bob, 'GET', `/groups/${group.id}/messages`)), [m1.id], 'bob\'s page, now cached');
  t.equal((await call(app, eve, 'GET', `/groups/${group.id}/messages`)).statusCode, 404, 'eve, same URL: 404, not bob\'s cached page');
  const m2 = await send(app, ann, { groupId: group.id, content: 'two' });
  t.strictSame(ids(await call(app, bob, 'GET', `/groups/${group.id}/messages`)), [m2.id, m1.id], 'a send evicts the members\' pages');
  t.equal((await call(app, bob, 'GET', `/groups/${group.id}/messages`)).headers['x-cache'], 'HIT', 'bob\'s page is cached');
  await call(app, ann, 'POST', `/groups/${group.id}/read`);
  t.equal((await call(app, bob, 'GET', `/groups/${group.id}/messages`)).headers['x-cache'], 'HIT', 'ann\'s read leaves bob\'s cached page alone');
  const pageOne = await call(app, bob, 'GET', `/groups/${group.id}/messages?limit=1`);
  t.strictSame(ids(pageOne), [m2.id]);
  const next = pageOne.json().nextCursor as number;
  t.strictSame(ids(await call(app, bob, 'GET', `/groups/${group.id}/messages?limit=1&before=${next}`)), [m1.id], 'the cursor pages back');
  await call(app, ann, 'DELETE', `/groups/${group.id}/members/${bob.id}`);
  const m3 = await send(app, ann, { groupId: group.id, content: 'three' });
  t.notOk(ids(await call(app, bob, 'GET', `/groups/${group.id}/messages`)).includes(m3.id), 'a removed member\'s cached page is not refreshed past the removal');
});

t.test('blocking in groups: the blocker gets no notification of the blocked user\'s messages; a blocked user cannot add the blocker', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const group = await createGroup(app, ann, 'Shared', [bob, cid]);
  await call(app, cid, 'POST', `/users/${bob.id}/block`);
  const fromBob = await send(app, bob, { groupId: group.id, content: 'from bob' });
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ user_id: string }>('select user_id from app_public.notifications where message_id = $1 order by 1', [fromBob.id]);
  t.strictSame(rows.map((r) => Number(r.user_id)), [ann.id], 'ann is notified, cid (who blocked bob) is not');
  t.ok(ids(await call(app, cid, 'GET', `/groups/${group.id}/messages`)).includes(fromBob.id), 'the blocker still sees it in the shared group');

  const own = await createGroup(app, bob, 'Bob\'s', []);
  const add = await call(app, bob, 'POST', `/groups/${own.id}/members`, { userId: cid.id });
  t.equal(add.statusCode, 403, 'bob cannot add cid, who blocked him');
  t.equal(add.json().code, 'BLOCKED');
  t.equal((await call(app, bob, 'POST', '/groups', { title: 'sneaky', memberIds: [cid.id] })).json().code, 'BLOCKED', 'nor create a group with cid');
});

t.test('account deletion: a member\'s messages and membership go; the last member\'s group goes', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob] = [await signUp(app, 'ann'), await signUp(app, 'bob')];
  const group = await createGroup(app, ann, 'Pair', [bob]);
  const fromAnn = await send(app, ann, { groupId: group.id, content: 'from ann' });
  const fromBob = await send(app, bob, { parentMessageId: fromAnn.id, content: 'from bob' });
  t.equal((await call(app, bob, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204, 'bob deletes his account');
  const page = await call(app, ann, 'GET', `/groups/${group.id}/messages`);
  t.strictSame(ids(page), [fromAnn.id], 'bob\'s message is gone');
  t.equal(page.json().messages[0].replyCount, 0, 'and the reply count follows');
  t.strictSame((await call(app, ann, 'GET', `/groups/${group.id}`)).json().members.map((m: { userId: number }) => m.userId), [ann.id], 'bob is no member');
  t.equal((await call(app, ann, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204, 'ann, the last member, deletes hers');
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from app_public.conversations where id = $1', [group.id]);
  t.equal(rows[0]!.n, 0, 'the group went with her');
  t.ok(fromBob.id > 0);
});

t.test('edits and unsends in a group reach every member\'s stream; only the sender unsends', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [ann, bob, cid] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'cid')];
  const group = await createGroup(app, ann, 'Events', [bob, cid]);
  const m = await send(app, ann, { groupId: group.id, content: 'first words' });
  await call(app, ann, 'PATCH', `/messages/${m.id}`, { content: 'second words' });
  t.equal((await call(app, bob, 'DELETE', `/messages/${m.id}`)).statusCode, 403, 'another member cannot unsend it');
  t.equal((await call(app, ann, 'DELETE', `/messages/${m.id}`)).statusCode, 204, 'its sender can');
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ type: string; users: string[] }>(
    `select type, array_agg(user_id order by user_id)::text[] as users from app_public.live_events
      where $1 = any (message_ids) group by type order by type`, [m.id]);
  const everyone = [ann.id, bob.id, cid.id].sort((a, b) => a - b).map(String);
  t.strictSame(rows, [
    { type: 'message.created', users: everyone },
    { type: 'message.deleted', users: everyone },
    { type: 'message.edited', users: everyone },
  ], 'created, edited and deleted: one event each on every member\'s stream');
  t.match((await call(app, cid, 'GET', `/groups/${group.id}/messages`)).json().messages, [{ id: m.id, content: null, deletedAt: /Z$/ }], 'members see the tombstone');
});
