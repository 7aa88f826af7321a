import pg from 'pg';
import t from 'tap';
import { buildTestApp, call, send, signUp } from './helpers/app';

t.test('send, reply, get', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');

  const res = await call(app, alice, 'POST', '/messages', { receiverId: bob.id, content: '  hello bob  ' });
  t.equal(res.statusCode, 201);
  const m = res.json();
  t.match(m, { senderId: alice.id, receiverId: bob.id, parentMessageId: null, content: 'hello bob', edited: false, editedAt: null, read: false, readAt: null, replyCount: 0 });
  t.match(m.sentAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'sentAt is ISO-8601 UTC');

  const reply = await call(app, bob, 'POST', '/messages', { parentMessageId: m.id, content: 'hi alice' });
  t.equal(reply.statusCode, 201);
  t.match(reply.json(), { senderId: bob.id, receiverId: alice.id, parentMessageId: m.id }, 'a reply needs only the parent');
  t.equal((await call(app, alice, 'GET', `/messages/${m.id}`)).json().replyCount, 1, 'the parent counts its reply');

  const agreeing = await call(app, alice, 'POST', '/messages', { receiverId: bob.id, parentMessageId: m.id, content: 'explicit receiver' });
  t.equal(agreeing.statusCode, 201, 'a receiverId that agrees with the parent is fine');
  const mismatch = await call(app, alice, 'POST', '/messages', { receiverId: carol.id, parentMessageId: m.id, content: 'wrong conversation' });
  t.equal(mismatch.statusCode, 422, 'a receiverId outside the parent\'s conversation is a 422');
  t.equal(mismatch.json().code, 'REPLY_CONVERSATION_MISMATCH');

  const stranger = await call(app, carol, 'POST', '/messages', { parentMessageId: m.id, content: 'let me in' });
  t.equal(stranger.statusCode, 404, 'replying to a message one cannot see is a 404, not a 422');
  t.equal((await call(app, alice, 'POST', '/messages', { receiverId: 987654321, content: 'anyone?' })).statusCode, 404, 'unknown receiver');
  t.equal((await call(app, alice, 'POST', '/messages', { parentMessageId: 987654321, content: 'anyone?' })).statusCode, 404, 'unknown parent');
  const neither = await call(app, alice, 'POST', '/messages', { content: 'to whom?' });
  t.equal(neither.statusCode, 400, 'receiverId or parentMessageId is required');

  const self = await call(app, alice, 'POST', '/messages', { receiverId: alice.id, content: 'note to self' });
  t.equal(self.statusCode, 201, 'a note to oneself is allowed');
  const notes = await call(app, alice, 'GET', '/notifications');
  t.notOk(notes.json().notifications.some((n: { messageId: number }) => n.messageId === self.json().id), 'and notifies no one');

  t.equal((await call(app, bob, 'GET', `/messages/${m.id}`)).statusCode, 200, 'the receiver sees it');
  t.equal((await call(app, carol, 'GET', `/messages/${m.id}`)).statusCode, 404, 'a stranger does not');
});

t.test('edit and history', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const m = await send(app, alice, { receiverId: bob.id, content: 'v1' });

  const empty = await call(app, bob, 'GET', `/messages/${m.id}/history`);
  t.strictSame(empty.json(), { messageId: m.id, versions: [] }, 'an unedited message has no earlier versions');

  const e1 = await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: 'v2' });
  t.equal(e1.statusCode, 200);
  t.match(e1.json(), { content: 'v2', edited: true });
  t.ok(e1.json().editedAt, 'editedAt is set');
  t.equal((await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: 'v3' })).statusCode, 200);

  const h = await call(app, bob, 'GET', `/messages/${m.id}/history`);
  t.equal(h.statusCode, 200);
  const versions = h.json().versions as { oldContent: string; editedAt: string; editedBy: number }[];
  t.strictSame(versions.map((v) => v.oldContent), ['v2', 'v1'], 'every earlier version, newest first');
  t.ok(versions.every((v) => v.editedBy === alice.id), 'with the editor');
  t.ok(versions[0]!.editedAt >= versions[1]!.editedAt, 'and the time of each edit');

  const byReceiver = await call(app, bob, 'PATCH', `/messages/${m.id}`, { content: 'forged' });
  t.equal(byReceiver.statusCode, 403, 'the receiver cannot edit');
  const carol = await signUp(app, 'carol');
  t.equal((await call(app, carol, 'PATCH', `/messages/${m.id}`, { content: 'forged' })).statusCode, 404, 'a stranger gets 404');
  t.equal((await call(app, carol, 'GET', `/messages/${m.id}/history`)).statusCode, 404, 'and cannot see the history');
  t.equal((await call(app, alice, 'GET', `/messages/${m.id}`)).json().content, 'v3', 'refused edits changed nothing');
});

t.test('mark read', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');
  const m = await send(app, alice, { receiverId: bob.id, content: 'read me' });

  t.equal((await call(app, alice, 'POST', `/messages/${m.id}/read`)).statusCode, 403, 'the sender cannot mark it read');
  t.equal((await call(app, carol, 'POST', `/messages/${m.id}/read`)).statusCode, 404, 'a stranger gets 404');
  t.equal((await call(app, bob, 'POST', `/messages/${m.id}/read`)).statusCode, 204);
  const after = (await call(app, bob, 'GET', `/messages/${m.id}`)).json();
  t.ok(after.read && after.readAt, 'read and readAt are set');
  t.equal((await call(app, bob, 'POST', `/messages/${m.id}/read`)).statusCode, 204, 'marking again is harmless');
  t.equal((await call(app, bob, 'GET', `/messages/${m.id}`)).json().readAt, after.readAt, 'and keeps the first readAt');
  const notes = (await call(app, bob, 'GET', '/notifications')).json();
  t.equal(notes.unreadCount, 0, 'reading the message read its notification');
});

t.test('thread', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');
  const root = await send(app, alice, { receiverId: bob.id, content: 'root' });
  const r1 = await send(app, bob, { parentMessageId: root.id, content: 'r1' });
  const r2 = await send(app, alice, { parentMessageId: root.id, content: 'r2' });
  const r11 = await send(app, alice, { parentMessageId: r1.id, content: 'r1.1' });
  const r111 = await send(app, bob, { parentMessageId: r11.id, content: 'r1.1.1' });
  const other = await send(app, alice, { receiverId: bob.id, content: 'another thread' });

  const res = await call(app, bob, 'GET', `/messages/${r11.id}/thread`);
  t.equal(res.statusCode, 200);
  type Node = { id: number; depth: number; content: string; replies: Node[] };
  const tree = res.json().root as Node;
  t.equal(tree.id, root.id, 'the root is the top of the thread containing the message');
  t.strictSame(tree.replies.map((n) => n.id), [r1.id, r2.id], 'replies in sending order');
  t.strictSame(tree.replies[0]!.replies.map((n) => n.id), [r11.id]);
  t.strictSame(tree.replies[0]!.replies[0]!.replies.map((n) => [n.id, n.depth]), [[r111.id, 3]], 'nested with depth');
  const flat: number[] = [];
  const walk = (n: Node) => { flat.push(n.id); n.replies.forEach(walk); };
  walk(tree);
  t.notOk(flat.includes(other.id), 'another thread of the same conversation is not included');
  t.equal(flat.length, 5);

  t.equal((await call(app, carol, 'GET', `/messages/${r1.id}/thread`)).statusCode, 404, 'a stranger gets 404');
  t.equal((await call(app, alice, 'GET', '/messages/987654321/thread')).statusCode, 404);
});

t.test('unread inbox', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push((await send(app, alice, { receiverId: bob.id, content: `m${i} ${'x'.repeat(300)}` })).id);
  await send(app, bob, { receiverId: alice.id, content: 'bob writes to alice' });
  await call(app, bob, 'POST', `/messages/${ids[0]}/read`);

  const page1 = await call(app, bob, 'GET', '/inbox/unread?limit=2');
  t.equal(page1.statusCode, 200);
  const body = page1.json();
  t.equal(body.unreadCount, 4, 'unread messages received by the caller only');
  t.strictSame(body.messages.map((m: { id: number }) => m.id), [ids[4], ids[3]], 'newest first');
  t.strictSame(Object.keys(body.messages[0]).sort(), ['id', 'parentMessageId', 'preview', 'senderId', 'senderUsername', 'sentAt'], 'only the view\'s columns');
  t.equal(body.messages[0].preview.length, 200, 'preview is the first 200 characters');
  t.equal(body.messages[0].senderUsername, alice.username);
  t.equal(body.nextCursor, ids[3]);
  const page2 = (await call(app, bob, 'GET', `/inbox/unread?limit=2&before=${body.nextCursor}`)).json();
  t.strictSame(page2.messages.map((m: { id: number }) => m.id), [ids[2], ids[1]]);
  t.equal(page2.nextCursor, null, 'null at the end');
  const empty = (await call(app, alice, 'GET', `/inbox/unread?before=1`)).json();
  t.strictSame(empty, { messages: [], unreadCount: 1, nextCursor: null }, 'an empty page still carries the count');
});

t.test('conversations', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');
  await send(app, alice, { receiverId: bob.id, content: 'a->b 1' });
  await send(app, bob, { receiverId: alice.id, content: 'b->a' });
  await send(app, carol, { receiverId: alice.id, content: 'c->a 1' });
  const last = await send(app, carol, { receiverId: alice.id, content: 'c->a 2' });
  await send(app, bob, { receiverId: carol.id, content: 'b->c private' });

  const list = (await call(app, alice, 'GET', '/conversations')).json();
  t.strictSame(list.conversations.map((c: { user: { id: number } }) => c.user.id), [carol.id, bob.id], 'one entry per partner, most recent first');
  t.match(list.conversations[0], { user: { username: carol.username }, lastMessage: { id: last.id, content: 'c->a 2' }, unreadCount: 2 });
  t.equal(list.conversations[1].unreadCount, 1);

  const msgs = (await call(app, alice, 'GET', `/conversations/${bob.id}/messages`)).json();
  t.strictSame(msgs.messages.map((m: { content: string }) => m.content), ['b->a', 'a->b 1'], 'only the messages between the two, newest first');
  const paged = (await call(app, alice, 'GET', `/conversations/${carol.id}/messages?limit=1`)).json();
  t.equal(paged.messages.length, 1);
  t.equal(paged.nextCursor, last.id);
  t.equal((await call(app, alice, 'GET', '/conversations/987654321/messages')).statusCode, 404, 'unknown user');

  t.equal((await call(app, alice, 'POST', `/conversations/${carol.id}/read`)).statusCode, 204);
  const after = (await call(app, alice, 'GET', '/conversations')).json();
  t.equal(after.conversations[0].unreadCount, 0, 'the whole conversation is read');
  t.equal(after.conversations[1].unreadCount, 1, 'others are untouched');
  t.equal((await call(app, alice, 'POST', '/conversations/987654321/read')).statusCode, 404);
});

t.test('notifications', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const m1 = await send(app, alice, { receiverId: bob.id, content: 'one' });
  const m2 = await send(app, alice, { receiverId: bob.id, content: 'two' });
  await send(app, bob, { parentMessageId: m2.id, content: 'reply' });

  const list = (await call(app, bob, 'GET', '/notifications')).json();
  t.equal(list.unreadCount, 2);
  t.match(list.notifications[0], { kind: 'message', messageId: m2.id, senderId: alice.id, preview: 'two', readAt: null });
  const first = list.notifications[1].id as number;
  t.equal((await call(app, alice, 'POST', `/notifications/${first}/read`)).statusCode, 404, 'someone else\'s notification is a 404');
  t.equal((await call(app, bob, 'POST', `/notifications/${first}/read`)).statusCode, 204);
  const unread = (await call(app, bob, 'GET', '/notifications?unread=true')).json();
  t.strictSame(unread.notifications.map((n: { messageId: number }) => n.messageId), [m2.id], '?unread=true filters');
  t.equal(unread.unreadCount, 1);
  const alices = (await call(app, alice, 'GET', '/notifications')).json();
  t.match(alices.notifications, [{ kind: 'reply' }], 'a reply notifies with kind reply');
  t.equal((await call(app, bob, 'POST', '/notifications/read-all')).statusCode, 204);
  t.equal((await call(app, bob, 'GET', '/notifications')).json().unreadCount, 0);

  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  const { rows } = await admin.query('select read from app_public.messages where id = $1', [m1.id]);
  t.equal(rows[0].read, false, 'reading a notification does not mark the message read');
});
