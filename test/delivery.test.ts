/**
 * Live delivery under concurrent commits: every notification reaches every
 * open stream exactly once, in cursor order, whatever order the writers'
 * transactions take their ids and commit in. These reproduce the loss of
 * "everything above the last notification id" (ids are taken at INSERT and
 * become visible at COMMIT, in another order).
 */
import pg from 'pg';
import t, { type Test } from 'tap';
import { buildTestApp, call, listen, send, signUp, type Session, type TestApp } from './helpers/app';
import { adminClient } from './helpers/db';
import { openStream, type SseClient } from './helpers/sse';

type Notice = { id: number; seq: number; messageId: number; senderId: number };
const notices = (c: SseClient) => c.events.filter((e) => e.event === 'notification').map((e) => JSON.parse(e.data) as Notice);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const admin = (t: Test, app: TestApp) => adminClient(t, app.db.url);

async function waitForLockWaiters(client: pg.Client, count: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    if (rows[0]!.n >= count) return;
    await sleep(20);
  }
  throw new Error(`fewer than ${count} sessions waiting for a lock`);
}

/** The receiver's notifications as the database has them, in cursor order. */
async function storedMessageIds(client: pg.Client, userId: number): Promise<number[]> {
  const { rows } = await client.query<{ message_id: string }>(
    'select message_id from app_public.notifications where user_id = $1 order by seq',
    [userId],
  );
  return rows.map((r) => Number(r.message_id));
}

// The deterministic reproduction, both ways round: a DBA holds a
// share lock on a parent message, so the reply to it (first to take its
// notification) waits at its reply-count update, while a plain message to
// the same receiver commits before it.
for (const order of ['reply first', 'plain first'] as const) {
  t.test(`a notification whose transaction commits late is still delivered (${order})`, async (t) => {
    const one = await buildTestApp(t);
    const url = await listen(one.app);
    const receiver = await signUp(one.app, 'rcv');
    const a = await signUp(one.app, 'a');
    const c = await signUp(one.app, 'c');
    const parent = await send(one.app, receiver, { receiverId: (order === 'reply first' ? a : c).id, content: 'parent' });
    const [replier, plain]: [Session, Session] = order === 'reply first' ? [a, c] : [c, a];
    const stream = await openStream(`${url}/notifications/stream`, { authorization: `Bearer ${receiver.token}` });
    t.teardown(() => stream.close());

    const dba = await admin(t, one);
    await dba.query('begin');
    await dba.query('select id from app_public.messages where id = $1 for share', [parent.id]);
    const reply = send(one.app, replier, { parentMessageId: parent.id, content: 'reply' });
    const watcher = await admin(t, one);
    await waitForLockWaiters(watcher, 1);
    const other = send(one.app, plain, { receiverId: receiver.id, content: 'plain' });
    await sleep(300);
    await dba.query('commit');
    const sent = await Promise.all([reply, other]);

    await stream.waitFor(2, 3000);
    await sleep(300);
    const got = notices(stream);
    t.strictSame(got.map((n) => n.messageId).sort(), sent.map((m) => m.id).sort(), 'both notifications arrived, once each');
    t.strictSame(got.map((n) => n.messageId), await storedMessageIds(watcher, receiver.id), 'in the cursor order the database has');

    const resumed = await openStream(`${url}/notifications/stream`, {
      authorization: `Bearer ${receiver.token}`,
      'last-event-id': stream.events.find((e) => e.event === 'notification')!.id!,
    });
    t.teardown(() => resumed.close());
    await resumed.waitFor(1, 3000);
    await sleep(200);
    t.strictSame(notices(resumed).map((n) => n.messageId), [got[1]!.messageId], 'a reconnect after the first event brings the rest');
  });
}

t.test('8 concurrent senders on two instances: three streams each get every notification once, in order', async (t) => {
  const one = await buildTestApp(t, { env: { DATABASE_POOL_SIZE: '10' } });
  const two = await buildTestApp(t, { shareWith: one });
  const [url1, url2] = [await listen(one.app), await listen(two.app)];
  const receiver = await signUp(one.app, 'rcv');
  const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => signUp(one.app, `s${i}`)));
  const auth = { authorization: `Bearer ${receiver.token}` };
  const s1 = await openStream(`${url1}/notifications/stream`, auth);
  const s2 = await openStream(`${url2}/notifications/stream`, auth);
  let s3 = await openStream(`${url2}/notifications/stream`, auth);
  t.teardown(() => [s1, s2, s3].forEach((s) => s.close()));

  const perSender = 40;
  let done = 0;
  let s3Before: Notice[] = [];
  let s3LastId = '';
  await Promise.all(
    senders.map(async (s, i) => {
      const app = (i % 2 ? two : one).app;
      for (let k = 0; k < perSender; k++) {
        await send(app, s, { receiverId: receiver.id, content: `m ${i}.${k}` });
        // Halfway through, the third stream disconnects and resumes.
        if (++done === (senders.length * perSender) / 2) {
          s3.close();
          await s3.closed;
          s3Before = notices(s3);
          s3LastId = s3.events.filter((e) => e.event === 'notification').at(-1)?.id ?? '';
          s3 = await openStream(`${url2}/notifications/stream`, { ...auth, ...(s3LastId ? { 'last-event-id': s3LastId } : {}) });
        }
      }
    }),
  );
  const total = senders.length * perSender;
  const watcher = await admin(t, one);
  const stored = await storedMessageIds(watcher, receiver.id);
  t.equal(stored.length, total);
  await s1.waitFor(total, 10_000);
  await s2.waitFor(total, 10_000);
  await s3.waitFor(total - s3Before.length, 10_000);
  await sleep(300);
  t.strictSame(notices(s1).map((n) => n.messageId), stored, 'stream on instance 1: every notification once, in cursor order');
  t.strictSame(notices(s2).map((n) => n.messageId), stored, 'stream on instance 2: the same');
  t.strictSame([...s3Before, ...notices(s3)].map((n) => n.messageId), stored, 'the stream that resumed: nothing lost or repeated');
  const seqs = notices(s1).map((n) => n.seq);
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'cursors strictly increase');
});

t.test('a 10,000-row INSERT … SELECT from psql while streaming: every notification once', async (t) => {
  const one = await buildTestApp(t);
  const url = await listen(one.app);
  const receiver = await signUp(one.app, 'rcv');
  const sender = await signUp(one.app, 'bulk');
  const stream = await openStream(`${url}/notifications/stream`, { authorization: `Bearer ${receiver.token}` });
  t.teardown(() => stream.close());
  const dba = await admin(t, one);
  const live = Promise.all(Array.from({ length: 20 }, (_, i) => send(one.app, sender, { receiverId: receiver.id, content: `live ${i}` })));
  await dba.query(
    `insert into app_public.messages (sender_id, receiver_id, content)
     select $1, $2, 'bulk ' || g from generate_series(1, 10000) g`,
    [sender.id, receiver.id],
  );
  await live;
  await stream.waitFor(10_020, 20_000);
  await sleep(300);
  t.strictSame(notices(stream).map((n) => n.messageId), await storedMessageIds(dba, receiver.id), 'all 10,020, once, in order');
});

t.test('a legacy numeric Last-Event-ID resumes after that notification', async (t) => {
  const one = await buildTestApp(t);
  const url = await listen(one.app);
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  await send(one.app, alice, { receiverId: bob.id, content: 'one' });
  const second = await send(one.app, alice, { receiverId: bob.id, content: 'two' });
  const list = (await call(one.app, bob, 'GET', '/notifications')).json().notifications as { id: number; messageId: number }[];
  const firstNotification = list.find((n) => n.messageId !== second.id)!;
  const stream = await openStream(`${url}/notifications/stream`, {
    authorization: `Bearer ${bob.token}`,
    'last-event-id': String(firstNotification.id),
  });
  t.teardown(() => stream.close());
  await stream.waitFor(1, 2000);
  await sleep(200);
  t.strictSame(notices(stream).map((n) => n.messageId), [second.id], 'the notification after it, nothing before');

  const unknown = await openStream(`${url}/notifications/stream`, { authorization: `Bearer ${bob.token}`, 'last-event-id': '999999' });
  t.teardown(() => unknown.close());
  await unknown.waitFor(1, 2000);
  t.equal(unknown.events[0]!.event, 'reset', 'an id that names nothing gets a reset event, not silence');
  const third = await send(one.app, alice, { receiverId: bob.id, content: 'three' });
  await unknown.waitFor(2, 2000);
  t.strictSame(notices(unknown).map((n) => n.messageId), [third.id], 'and then live notifications');
});

t.test('streams per user are capped: one more is a 429 with the error shape and Retry-After', async (t) => {
  const one = await buildTestApp(t, { env: { SSE_MAX_STREAMS_PER_USER: '2' } });
  const url = await listen(one.app);
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const auth = { authorization: `Bearer ${bob.token}` };
  const first = await openStream(`${url}/notifications/stream`, auth);
  const second = await openStream(`${url}/notifications/stream`, auth);
  t.teardown(() => [first, second].forEach((s) => s.close()));
  t.equal(first.status, 200);
  t.equal(second.status, 200);
  const third = await fetch(`${url}/notifications/stream`, { headers: auth });
  t.equal(third.status, 429, 'the third stream is refused');
  t.equal(third.headers.get('retry-after'), '30');
  t.match(await third.json(), { statusCode: 429, code: 'TOO_MANY_STREAMS', message: /at most 2/ });
  const aliceStream = await openStream(`${url}/notifications/stream`, { authorization: `Bearer ${alice.token}` });
  t.teardown(() => aliceStream.close());
  t.equal(aliceStream.status, 200, 'the cap is per user');

  first.close();
  await first.closed;
  await sleep(100);
  const again = await openStream(`${url}/notifications/stream`, auth);
  t.teardown(() => again.close());
  t.equal(again.status, 200, 'closing one makes room');
  await send(one.app, alice, { receiverId: bob.id, content: 'to both' });
  await Promise.all([second.waitFor(1, 2000), again.waitFor(1, 2000)]);
  t.pass('the capped streams still get their events');
});

t.test('one catch-up query per user per wake, however many streams the user has', async (t) => {
  let catchUps = 0;
  const counter = {
    name: 'test/catch-up-counter',
    beforeQueryExecution: (_c: unknown, q: { sql: string }) => {
      if (q.sql.includes('n.seq >')) catchUps++;
      return null;
    },
  };
  const one = await buildTestApp(t, { interceptors: [counter] });
  const url = await listen(one.app);
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const streams = await Promise.all(
    Array.from({ length: 5 }, () => openStream(`${url}/notifications/stream`, { authorization: `Bearer ${bob.token}` })),
  );
  t.teardown(() => streams.forEach((s) => s.close()));
  await sleep(300);
  catchUps = 0;
  await send(one.app, alice, { receiverId: bob.id, content: 'one wake' });
  await Promise.all(streams.map((s) => s.waitFor(1, 2000)));
  await sleep(200);
  t.equal(catchUps, 1, 'five streams, one send: one catch-up query');
  t.ok(streams.every((s) => notices(s).length === 1), 'and every stream got the notification once');
});

t.test('GET /messages/:id/thread is paged: bounded pages, a cursor that covers the thread', async (t) => {
  const one = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const root = await send(one.app, alice, { receiverId: bob.id, content: 'root' });
  const dba = await admin(t, one);
  await dba.query(
    `insert into app_public.messages (sender_id, parent_message_id, content)
     select $1, $2, 'reply ' || g from generate_series(1, 250) g`,
    [bob.id, root.id],
  );
  const first = await call(one.app, alice, 'GET', `/messages/${root.id}/thread`);
  t.equal(first.statusCode, 200);
  const page1 = first.json();
  t.equal(page1.root.id, root.id, 'the first page holds the root');
  t.equal(page1.root.replies.length, 199, 'and 199 replies: 200 nodes, the default limit');
  t.ok(page1.nextCursor, 'with a cursor');
  const second = (await call(one.app, alice, 'GET', `/messages/${root.id}/thread?after=${page1.nextCursor}&limit=1000`)).json();
  t.equal(second.root, null, 'later pages have no root');
  t.equal(second.continued.length, 51, 'the rest, each under a parent from an earlier page');
  t.ok(second.continued.every((n: { parentMessageId: number }) => n.parentMessageId === root.id));
  t.equal(second.nextCursor, null, 'the last page');
  const ids = [...page1.root.replies, ...second.continued].map((n: { id: number }) => n.id);
  t.equal(new Set(ids).size, 250, 'no reply twice or missing');

  for (const [query, code] of [['limit=0', 'VALIDATION_ERROR'], ['limit=1001', 'VALIDATION_ERROR'], ['after=abc', 'VALIDATION_ERROR'], ['after=999999', 'INVALID_CURSOR']]) {
    const res = await call(one.app, alice, 'GET', `/messages/${root.id}/thread?${query}`);
    t.equal(res.statusCode, 400, `${query}: 400`);
    t.equal(res.json().code, code, `${query}: ${code}`);
  }
});
