/**
 * Live conversation events (migration 000010): message.created,
 * message.edited and message.read on the event stream, from the API and
 * from psql, across two instances, batched one per recipient, type and
 * statement, replayed with Last-Event-ID, filtered with ?types=.
 */
import { execFileSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { buildTestApp, call, listen, send, signUp, type Session } from './helpers/app';
import { openStream, type SseClient } from './helpers/sse';

type Batch = { count: number; messages: Record<string, unknown>[] };
const ALL = 'notification,message.created,message.edited,message.read';
const of = (c: SseClient, type: string) => c.events.filter((e) => e.event === type).map((e) => ({ id: e.id, ...(JSON.parse(e.data) as Batch) }));

/** Waits until `c` has an event of `type` matching `test`, or fails after 5 s. */
async function eventually(c: SseClient, type: string, test: (b: Batch) => boolean): Promise<Batch | undefined> {
  for (let i = 0; i < 100; i++) {
    const hit = of(c, type).find(test);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

async function twoInstances(t: Test) {
  const one = await buildTestApp(t);
  const two = await buildTestApp(t, { shareWith: one });
  const [url1, url2] = [await listen(one.app), await listen(two.app)];
  const alice = await signUp(one.app, 'alice');
  const bob = await signUp(one.app, 'bob');
  const stream = async (url: string, who: Session, query = `types=${ALL}`) => {
    const c = await openStream(`${url}/notifications/stream?${query}`, { authorization: `Bearer ${who.token}` });
    t.teardown(() => c.close());
    return c;
  };
  return { one, two, url1, url2, alice, bob, stream };
}

t.test('created, edited and read, from the API, on two instances; the messages are the API\'s own JSON', async (t) => {
  const { one, two, url1, url2, alice, bob, stream } = await twoInstances(t);
  const aliceStream = await stream(url1, alice);
  const bobStream = await stream(url2, bob);

  const m = await send(one.app, alice, { receiverId: bob.id, content: 'hello bob' });
  const created = await eventually(bobStream, 'message.created', (b) => b.messages[0]?.id === m.id);
  t.ok(created, 'bob (instance 2) gets message.created');
  t.strictSame(created?.messages[0], (await call(two.app, bob, 'GET', `/messages/${m.id}`)).json(), 'its message equals GET /messages/:id');
  t.equal(created?.count, 1);
  t.ok(await eventually(aliceStream, 'message.created', (b) => b.messages[0]?.id === m.id), 'alice (the sender, instance 1) too');
  t.ok(await eventually(bobStream, 'notification', () => true), 'and bob still gets his notification');

  t.equal((await call(one.app, alice, 'PATCH', `/messages/${m.id}`, { content: 'hello bob, edited' })).statusCode, 200);
  const edited = await eventually(bobStream, 'message.edited', (b) => b.messages[0]?.id === m.id);
  t.match(edited?.messages[0], { content: 'hello bob, edited', edited: true, editedAt: String }, 'message.edited carries the new content and edit time');
  t.strictSame(edited?.messages[0], (await call(two.app, bob, 'GET', `/messages/${m.id}`)).json());
  t.ok(await eventually(aliceStream, 'message.edited', (b) => b.messages[0]?.id === m.id), 'both participants get it');

  t.equal((await call(two.app, bob, 'POST', `/messages/${m.id}/read`)).statusCode, 204);
  const read = await eventually(aliceStream, 'message.read', (b) => b.messages[0]?.id === m.id);
  t.ok(read, 'the sender gets a read receipt');
  t.equal(read?.messages[0]?.readAt, (await call(one.app, alice, 'GET', `/messages/${m.id}`)).json().readAt, 'with the read time');
  t.strictSame(of(bobStream, 'message.read'), [], 'the reader gets no receipt of their own read');

  // Every event id is the recipient's seq: strictly increasing, no gaps.
  const seqs = bobStream.events.map((e) => Number(e.id!.slice(1)));
  t.strictSame(seqs, seqs.map((_, i) => seqs[0]! + i), `bob's stream: seq ${seqs.join(', ')}`);
});

t.test('from psql: inserts, edits and reads are announced; a bulk statement is one event per recipient and type', async (t) => {
  const { one, url1, url2, alice, bob, stream } = await twoInstances(t);
  const aliceStream = await stream(url1, alice, 'types=message.created,message.edited,message.read');
  const bobStream = await stream(url2, bob, 'types=message.created,message.edited,message.read');
  const psql = (sqlText: string) =>
    execFileSync('psql', [one.db.url, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', sqlText], { encoding: 'utf8' });

  psql(`insert into app_public.messages (sender_id, receiver_id, content)
        select ${alice.id}, ${bob.id}, 'bulk ' || g from generate_series(1, 10000) g`);
  const bulk = await eventually(bobStream, 'message.created', (b) => b.count === 10000);
  t.ok(bulk, 'a 10,000-row INSERT … SELECT: one message.created for bob with count 10000');
  t.equal(bulk?.messages.length, 100, 'listing the first 100');
  t.ok(await eventually(aliceStream, 'message.created', (b) => b.count === 10000), 'and one for alice');

  psql(`update app_public.messages set read = true where receiver_id = ${bob.id}`);
  const receipts = await eventually(aliceStream, 'message.read', (b) => b.count === 10000);
  t.ok(receipts, 'a 10,000-row mark-read from psql: one message.read for the sender, count 10000');
  t.equal(receipts?.messages.length, 100);

  psql(`update app_public.messages set content = 'edited in psql' where content in ('bulk 1', 'bulk 2')`);
  const edits = await eventually(bobStream, 'message.edited', (b) => b.count === 2);
  t.strictSame(edits?.messages.map((m) => m.content), ['edited in psql', 'edited in psql'], 'an edit from psql: both messages in one event');

  psql(`update app_public.messages set read = true where receiver_id = ${bob.id}`);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(of(aliceStream, 'message.read').length, 1, 'marking read again announces nothing (read was already true)');
  t.equal(of(bobStream, 'message.created').length, 1, 'bob got exactly one created event for the bulk');
  t.equal(of(bobStream, 'message.edited').length, 1, 'and one edited event');
});

t.test('?types= filters; Last-Event-ID replays missed events of every type', async (t) => {
  const { one, url1, url2, alice, bob, stream } = await twoInstances(t);
  const onlyNotes = await stream(url1, bob, 'types=notification');
  const all = await stream(url2, bob);
  const m = await send(one.app, alice, { receiverId: bob.id, content: 'first' });
  t.ok(await eventually(all, 'message.created', () => true));
  t.ok(await eventually(onlyNotes, 'notification', () => true));
  t.strictSame([...new Set(onlyNotes.events.map((e) => e.event))], ['notification'], '?types=notification: notifications only');

  const lastId = all.events.at(-1)!.id!;
  all.close();
  await all.closed;
  await call(one.app, alice, 'PATCH', `/messages/${m.id}`, { content: 'first, edited while away' });
  await call(one.app, bob, 'POST', `/messages/${m.id}/read`);
  const back = await stream(url2, bob, `types=${ALL}`);
  const resumed = await openStream(`${url2}/notifications/stream?types=${ALL}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': lastId });
  t.teardown(() => resumed.close());
  const missed = await eventually(resumed, 'message.edited', (b) => b.messages[0]?.id === m.id);
  t.equal(missed?.messages[0]?.content, 'first, edited while away', 'the edit made while away is replayed');
  t.strictSame(of(back, 'message.edited'), [], 'a fresh stream (no Last-Event-ID) starts with the next event');

  for (const bad of ['types=bogus', 'types=', 'types=notification,,', 'other=1']) {
    const res = await fetch(`${url1}/notifications/stream?${bad}`, { headers: { authorization: `Bearer ${bob.token}` } });
    t.equal(res.status, 400, `${bad}: 400`);
    await res.body?.cancel();
  }
});

t.test('an account deletion reaches its partner and its groups\' members live, by id only, and is replayed', async (t) => {
  const { one, url1, url2, alice, bob, stream } = await twoInstances(t);
  const carol = await signUp(one.app, 'carol');
  const stranger = await signUp(one.app, 'stranger');
  const types = 'types=message.created,account.deleted';
  await send(one.app, alice, { receiverId: bob.id, content: 'marker-tapir, soon gone' });
  const group = (await call(one.app, alice, 'POST', '/groups', { title: 'deletion', memberIds: [carol.id] })).json() as { id: number };
  await send(one.app, alice, { groupId: group.id, content: 'marker-tapir in the group' });
  const bobStream = await stream(url2, bob, types);
  const carolStream = await stream(url1, carol, types);
  const strangerStream = await stream(url1, stranger, types);
  const before = await openStream(`${url2}/notifications/stream?${types}`, { authorization: `Bearer ${bob.token}` });
  t.teardown(() => before.close());
  await send(one.app, bob, { receiverId: alice.id, content: 'a last word to alice' });
  const lastId = await (async () => {
    for (let i = 0; i < 100 && !before.events.length; i++) await new Promise((r) => setTimeout(r, 50));
    return before.events.at(-1)?.id;
  })();
  before.close();

  t.equal((await call(one.app, alice, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  const deleted = (c: SseClient) => c.events.filter((e) => e.event === 'account.deleted').map((e) => JSON.parse(e.data) as unknown);
  const until = async (c: SseClient) => {
    for (let i = 0; i < 100 && !deleted(c).length; i++) await new Promise((r) => setTimeout(r, 50));
    return deleted(c);
  };
  t.strictSame(await until(bobStream), [{ userId: alice.id }], 'the direct partner (instance 2) is told, with the id alone');
  t.strictSame(await until(carolStream), [{ userId: alice.id }], 'and the group\'s member');
  await new Promise((r) => setTimeout(r, 300));
  t.strictSame(deleted(strangerStream), [], 'a stranger is told nothing');
  t.notOk(JSON.stringify(bobStream.events).includes('marker-tapir'), 'no event carries the deleted account\'s words');

  t.ok(lastId, 'bob had a cursor from before');
  const resumed = await openStream(`${url2}/notifications/stream?${types}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': lastId! });
  t.teardown(() => resumed.close());
  t.strictSame(await until(resumed), [{ userId: alice.id }], 'a client that was away gets it on resuming (Last-Event-ID)');
  t.equal((await call(one.app, bob, 'GET', `/conversations/${alice.id}/messages`)).statusCode, 404, 'and the conversation it reloads is gone');
});
