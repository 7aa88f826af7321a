/**
 * Group fan-out under concurrency: six members send to one group at once
 * through two instances; every other member's streams (on either
 * instance) get each message's notification and its message.created
 * exactly once, in cursor order, and the group positions are a gapless
 * commit-ordered run.
 */
import t from 'tap';
import { buildTestApp, call, listen, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';
import { openStream, type SseClient } from './helpers/sse';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ofType = (c: SseClient, type: string) => c.events.filter((e) => e.event === type);

t.test('6 concurrent senders on two instances: each member\'s streams get every group message once, in order', async (t) => {
  const one = await buildTestApp(t, { env: { DATABASE_POOL_SIZE: '10' } });
  const two = await buildTestApp(t, { shareWith: one });
  const [url1, url2] = [await listen(one.app), await listen(two.app)];
  const watchers = await Promise.all(Array.from({ length: 3 }, (_, i) => signUp(one.app, `w${i}`)));
  const senders = await Promise.all(Array.from({ length: 6 }, (_, i) => signUp(one.app, `s${i}`)));
  const created = await call(one.app, senders[0]!, 'POST', '/groups', { title: 'busy', memberIds: [...watchers, ...senders].map((u) => u.id) });
  const groupId = created.json().id as number;

  const streams = await Promise.all(
    watchers.flatMap((w) => [url1, url2].map((base) =>
      openStream(`${base}/notifications/stream?types=notification,message.created`, { authorization: `Bearer ${w.token}` }))),
  );
  t.teardown(() => streams.forEach((s) => s.close()));

  const perSender = 20;
  await Promise.all(senders.map(async (s, i) => {
    for (let k = 0; k < perSender; k++) await send((i % 2 ? two : one).app, s, { groupId, content: `m ${i}.${k}` });
  }));
  const total = senders.length * perSender;

  const admin = await adminClient(t, one.db.url);
  const positions = await admin.query<{ group_seq: string }>('select group_seq from app_public.messages where group_id = $1 order by group_seq', [groupId]);
  t.strictSame(positions.rows.map((r) => Number(r.group_seq)), Array.from({ length: total }, (_, i) => i + 1), 'positions 1..n, no gap, no repeat');

  for (const [i, w] of watchers.entries()) {
    const { rows } = await admin.query<{ message_id: string }>('select message_id from app_public.notifications where user_id = $1 order by seq', [w.id]);
    const stored = rows.map((r) => Number(r.message_id));
    t.equal(stored.length, total, `watcher ${i}: one notification per message`);
    for (const [k, stream] of streams.slice(i * 2, i * 2 + 2).entries()) {
      await stream.waitFor(2 * total, 10_000);
      await sleep(100);
      const notices = ofType(stream, 'notification').map((e) => (JSON.parse(e.data) as { messageId: number }).messageId);
      t.strictSame(notices, stored, `watcher ${i}, instance ${k + 1}: every notification once, in cursor order`);
      const createdIds = ofType(stream, 'message.created').flatMap((e) => (JSON.parse(e.data) as { messages: { id: number; groupId: number }[] }).messages);
      t.equal(createdIds.length, total, `watcher ${i}, instance ${k + 1}: every message.created once`);
      t.ok(createdIds.every((m) => m.groupId === groupId), 'each carries its groupId');
      const ids = [...stream.events].map((e) => Number(e.id?.slice(1)));
      t.ok(ids.every((id, n) => n === 0 || id > ids[n - 1]!), 'cursors strictly increase');
    }
  }
});
