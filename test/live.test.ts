/**
 * Live notifications over server-sent events, fed by LISTEN/NOTIFY, across
 * two instances of the app on one database.
 */
import crypto from 'node:crypto';
import t, { type Test } from 'tap';
import { createRedisCacheClient } from '../src/cache/redis-store';
import { buildTestApp, call, listen, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';
import { openStream, type SseClient } from './helpers/sse';

type Notice = { id: number; seq: number; kind: string; messageId: number; senderId: number; preview: string };
const parse = (c: SseClient) => c.events.map((e) => ({ ...(JSON.parse(e.data) as Notice), eventId: e.id, event: e.event }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function twoInstances(t: Test, options: { cacheClient?: () => ReturnType<typeof createRedisCacheClient> } = {}) {
  const one = await buildTestApp(t, { cacheClient: options.cacheClient?.() });
  const two = await buildTestApp(t, { shareWith: one, cacheClient: options.cacheClient?.() });
  const url2 = await listen(two.app);
  return { one, two, url2 };
}

/** Two instances, alice and bob, and bob's stream on instance 2. */
async function aliceToBob(t: Test) {
  const { one, two, url2 } = await twoInstances(t);
  const alice = await signUp(one.app, 'alice');
  const bob = await signUp(one.app, 'bob');
  const stream = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}` });
  t.teardown(() => stream.close());
  return { one, two, url2, alice, bob, stream };
}


t.test('a message sent through instance 1 reaches a stream on instance 2 within a second', async (t) => {
  const { one, url2, alice, bob, stream } = await aliceToBob(t);
  t.equal(stream.status, 200);
  t.match(stream.headers['content-type'], /^text\/event-stream/);

  const m = await send(one.app, alice, { receiverId: bob.id, content: 'live hello' });
  // waitFor rejects (failing the test) unless the event arrives within a
  // second; the latency itself is measured in bench/ (npm run bench:delivery).
  await stream.waitFor(1, 1000);
  const [event] = parse(stream);
  t.match(event, { event: 'notification', kind: 'message', messageId: m.id, senderId: alice.id, preview: 'live hello' });
  const listed = (await call(one.app, bob, 'GET', '/notifications')).json().notifications[0];
  t.equal(event!.id, listed.id, 'the data is the notification');
  t.equal(event!.eventId, `s${event!.seq}`, 'the event id is the delivery cursor');
});

t.test('a rolled-back insert never produces an event', async (t) => {
  const { one, url2, alice, bob, stream } = await aliceToBob(t);
  const admin = await adminClient(t, one.db.url);
  await admin.query('begin');
  await admin.query('insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3)', [alice.id, bob.id, 'never committed']);
  await admin.query('rollback');
  // Events arrive in cursor order, so once the next committed message is
  // here anything the rollback could have sent would have come first.
  const real = await send(one.app, alice, { receiverId: bob.id, content: 'committed' });
  await stream.waitFor(1, 5000);
  t.strictSame(parse(stream).map((e) => e.messageId), [real.id], 'only the committed message arrives');
});

t.test('the LISTEN connection is killed while messages are sent: every notification arrives once, in order', async (t) => {
  const { one, two, alice, bob, stream } = await aliceToBob(t);
  const admin = await adminClient(t, one.db.url);
  const sent: number[] = [];
  for (let i = 0; i < 5; i++) sent.push((await send(one.app, alice, { receiverId: bob.id, content: `before ${i}` })).id);
  await stream.waitFor(5, 2000);
  const killed = await admin.query(
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'signalbox-listener'`,
  );
  t.ok(killed.rowCount! >= 2, 'both instances\' LISTEN backends were terminated');
  for (let i = 0; i < 10; i++) {
    sent.push((await send(one.app, alice, { receiverId: bob.id, content: `during ${i}` })).id);
  }
  await stream.waitFor(15, 8000);
  // The last of these is the sentinel: a repeat would have come before it.
  for (let i = 0; i < 3; i++) sent.push((await send(one.app, alice, { receiverId: bob.id, content: `after ${i}` })).id);
  await stream.waitFor(18, 8000);
  const events = parse(stream);
  t.strictSame(events.map((e) => e.messageId), sent, 'every message exactly once, in sending order');
  t.ok(events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq), 'cursors strictly increase');
  const health = (await two.app.inject({ method: 'GET', url: '/healthz' })).json();
  t.equal(health.events, 'listening', 'the listener is back');
});

t.test('Last-Event-ID replays exactly what was missed', async (t) => {
  const { one, url2 } = await twoInstances(t);
  const alice = await signUp(one.app, 'alice');
  const bob = await signUp(one.app, 'bob');
  const early = await send(one.app, alice, { receiverId: bob.id, content: 'before any stream' });
  const first = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}` });
  const a = await send(one.app, alice, { receiverId: bob.id, content: 'a' });
  const b = await send(one.app, alice, { receiverId: bob.id, content: 'b' });
  await first.waitFor(2, 2000);
  t.strictSame(parse(first).map((e) => e.messageId), [a.id, b.id], 'a new stream starts with the next notification');
  first.close();
  await first.closed;
  const lastSeen = parse(first)[1]!.eventId!;

  const missed = [];
  for (const content of ['c', 'd', 'e']) missed.push((await send(one.app, alice, { receiverId: bob.id, content })).id);
  const second = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}`, 'last-event-id': lastSeen });
  t.teardown(() => second.close());
  await second.waitFor(3, 2000);
  const live = await send(one.app, alice, { receiverId: bob.id, content: 'f' });
  // A last message as a sentinel: a repeat of an earlier one would arrive before it.
  const sentinel = await send(one.app, alice, { receiverId: bob.id, content: 'g' });
  await second.waitFor(5, 5000);
  t.strictSame(parse(second).map((e) => e.messageId), [...missed, live.id, sentinel.id], 'the missed ones, then live ones: nothing missing, nothing twice');
  t.notOk(parse(second).some((e) => e.messageId === early.id));

  const bad = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}`, 'last-event-id': 'abc' });
  t.equal(bad.status, 400, 'a malformed Last-Event-ID is a 400');
  const anonymous = await openStream(`${url2}/notifications/stream`);
  t.equal(anonymous.status, 401, 'no token, no stream');
  const viaCookie = await openStream(`${url2}/notifications/stream`, { cookie: `signalbox_session=${bob.token}` });
  t.equal(viaCookie.status, 200, 'the browser\'s session cookie works');
  viaCookie.close();
});

t.test('deleting the account or logging out closes its streams', async (t) => {
  const { one, url2 } = await twoInstances(t);
  const bob = await signUp(one.app, 'bob');
  const carol = await signUp(one.app, 'carol');
  const stream = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}` });
  t.equal((await call(one.app, bob, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  // Waits for the close event (a 5 s bound only fails a hung test; speed is bench's business).
  const closed = await Promise.race([stream.closed.then(() => true), sleep(5000).then(() => false)]);
  t.ok(closed, 'the deleted user\'s stream on the other instance is closed');

  // Logout is noticed at the next heartbeat (100 ms in this test app).
  const fast = await buildTestApp(t, { shareWith: one, env: { SSE_HEARTBEAT_MS: '100' } });
  const fastUrl = await listen(fast.app);
  const carolStream = await openStream(`${fastUrl}/notifications/stream`, { authorization: `Bearer ${carol.token}` });
  for (let i = 0; i < 100 && !carolStream.comments.includes('heartbeat'); i++) await sleep(20);
  t.ok(carolStream.comments.includes('heartbeat'), 'heartbeat comments are sent');
  t.equal((await call(one.app, carol, 'POST', '/auth/logout')).statusCode, 204);
  const loggedOut = await Promise.race([carolStream.closed.then(() => true), sleep(5000).then(() => false)]);
  t.ok(loggedOut, 'a logged-out token\'s stream closes (at the next heartbeat)');
});

for (const mode of ['memory', 'redis'] as const) {
  t.test(`a write on instance 1 makes instance 2's next GET a MISS with the new data (${mode})`, async (t) => {
    const clients: ReturnType<typeof createRedisCacheClient>[] = [];
    const cacheClient = mode === 'redis' ? () => { const c = createRedisCacheClient('redis://127.0.0.1:6379'); clients.push(c); return c; } : undefined;
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    const { one, two } = await twoInstances(t, cacheClient ? { cacheClient } : {});
    const alice = await signUp(one.app, 'alice');
    const bob = await signUp(one.app, 'bob');
    await send(one.app, alice, { receiverId: bob.id, content: 'first' });
    // Let that write's own NOTIFY evictions land before warming the cache.
    await sleep(300);
    const url = `/conversations/${alice.id}/messages`;
    t.equal((await call(two.app, bob, 'GET', url)).headers['x-cache'], 'MISS');
    t.equal((await call(two.app, bob, 'GET', url)).headers['x-cache'], 'HIT');
    if (mode === 'redis') t.equal((await call(one.app, bob, 'GET', url)).headers['x-cache'], 'HIT', 'instances share the Redis cache');

    await send(one.app, alice, { receiverId: bob.id, content: 'second' });
    let res = await call(two.app, bob, 'GET', url);
    const deadline = Date.now() + 1000;
    // Memory mode hears of the write through NOTIFY; give it up to a second.
    while (res.headers['x-cache'] === 'HIT' && Date.now() < deadline) {
      await sleep(25);
      res = await call(two.app, bob, 'GET', url);
    }
    t.equal(res.headers['x-cache'], 'MISS', 'instance 2 misses after the write');
    t.equal(res.json().messages[0].content, 'second', 'and shows the new message');
    if (mode === 'redis') t.equal((await call(two.app, bob, 'GET', '/healthz')).json().cache, 'ok');
  });
}

t.test('with Redis down the service answers from the database and says so', async (t) => {
  const down = createRedisCacheClient('redis://127.0.0.1:1');
  t.teardown(() => down.close());
  const { app } = await buildTestApp(t, { cacheClient: down });
  const alice = await signUp(app, 'alice');
  const first = await call(app, alice, 'GET', '/conversations');
  t.equal(first.statusCode, 200, 'the view is served');
  t.equal(first.headers['x-cache'], 'MISS');
  const withEtag = await call(app, alice, 'GET', '/conversations', undefined, { 'if-none-match': String(first.headers.etag) });
  t.equal(withEtag.statusCode, 304, 'revalidation still works');
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200);
  t.match(health.json(), { status: 'degraded', database: 'ok', cache: 'unavailable' });
});
