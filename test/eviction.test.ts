/**
 * One eviction mechanism for every write: the writing transaction's
 * triggers record whose views changed and the request evicts them after
 * commit, before its answer; other instances hear it through the
 * database's events. Checked for every route that changes a conversation
 * view: the writer sees the write at once (never a stale HIT), the other
 * participant on another instance within a second.
 */
import t from 'tap';
import { buildTestApp, call, send, signUp, type Session } from './helpers/app';
import { queryRecorder } from './helpers/count';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a write through any route: its writer sees it at once, the other participant on another instance within a second', async (t) => {
  const one = await buildTestApp(t);
  const two = await buildTestApp(t, { shareWith: one });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const first = await send(one.app, alice, { receiverId: bob.id, content: 'first' });
  await sleep(300);

  type View = { conversations: { lastMessage: { id: number; content: string; read: boolean }; unreadCount: number }[] };
  const view = async (app: typeof one.app, who: Session) => (await call(app, who, 'GET', '/conversations')).json() as View;
  const warm = async () => {
    for (const [app, who] of [[one.app, alice], [one.app, bob], [two.app, alice], [two.app, bob]] as const) {
      await call(app, who, 'GET', '/conversations');
      await call(app, who, 'GET', '/conversations');
    }
  };
  /** Whether `seen` holds on `who`'s view on instance two within a second (the contract). */
  const withinASecond = async (seen: (v: View) => boolean, who: Session = bob) => {
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline) {
      if (seen(await view(two.app, who))) return true;
      await sleep(20);
    }
    return false;
  };

  const writes: [string, () => Promise<(v: View) => boolean>][] = [
    ['POST /messages', async () => {
      const m = await send(one.app, alice, { receiverId: bob.id, content: 'second' });
      return (v) => v.conversations[0]?.lastMessage.id === m.id;
    }],
    ['POST /messages (reply)', async () => {
      const m = await send(one.app, alice, { parentMessageId: first.id, content: 'a reply' });
      return (v) => v.conversations[0]?.lastMessage.id === m.id;
    }],
    ['PATCH /messages/:id', async () => {
      const last = (await view(one.app, alice)).conversations[0]!.lastMessage;
      t.equal((await call(one.app, alice, 'PATCH', `/messages/${last.id}`, { content: 'edited' })).statusCode, 200);
      return (v) => v.conversations[0]?.lastMessage.content === 'edited';
    }],
  ];
  for (const [name, write] of writes) {
    await warm();
    const seen = await write();
    t.ok(seen(await view(one.app, alice)), `${name}: the writer sees it at once`);
    t.ok(await withinASecond(seen), `${name}: the other participant on the other instance within a second`);
  }

  // Reads by the receiver: bob writes on instance one, alice reads on two.
  const aliceSees = (seen: (v: View) => boolean) => withinASecond(seen, alice);
  await warm();
  const last = (await view(one.app, bob)).conversations[0]!.lastMessage;
  t.equal((await call(one.app, bob, 'POST', `/messages/${last.id}/read`)).statusCode, 204);
  t.ok((await view(one.app, bob)).conversations[0]!.lastMessage.read, 'POST /messages/:id/read: the reader sees it at once');
  t.ok(await aliceSees((v) => v.conversations[0]?.lastMessage.read === true), 'and the sender on the other instance within a second');
  await send(one.app, alice, { receiverId: bob.id, content: 'unread again' });
  await warm();
  t.equal((await call(one.app, bob, 'POST', `/conversations/${alice.id}/read`)).statusCode, 204);
  t.equal((await view(one.app, bob)).conversations[0]!.unreadCount, 0, 'POST /conversations/:id/read: the reader sees it at once');
  t.ok(await aliceSees((v) => v.conversations[0]?.lastMessage.read === true), 'and the sender on the other instance within a second');

  await warm();
  t.equal((await call(one.app, bob, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  t.ok(await aliceSees((v) => v.conversations.length === 0), 'DELETE /me: the partner on the other instance loses the conversation within a second');
  t.strictSame((await view(one.app, alice)).conversations, [], 'and on the deleting instance at once');
});

t.test('a read-only request pays nothing for it; a write reads the change once', async (t) => {
  const recorder = queryRecorder();
  const { app } = await buildTestApp(t, { interceptors: [recorder.interceptor], live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  recorder.reset();
  await call(app, alice, 'GET', '/inbox/unread');
  t.notOk(recorder.queries.some((q) => q.includes('signalbox.touched')), 'a GET does not read the change record');
  recorder.reset();
  await send(app, alice, { receiverId: bob.id, content: 'x' });
  t.equal(recorder.queries.filter((q) => q.includes('signalbox.touched')).length, 1, 'a send reads it once');
});
