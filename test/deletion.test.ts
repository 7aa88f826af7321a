/**
 * Deletion that deletes: after DELETE /me no table of any schema holds the
 * account's words, and a stream resumed from before the deletion replays
 * none of them (it gets what came after). The psql side of the same rule
 * is test/sql/09_deletion_leaves_nothing.sql.
 */
import crypto from 'node:crypto';
import t from 'tap';
import { buildTestApp, call, listen, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';
import { openStream } from './helpers/sse';

const ALL = 'notification,message.created,message.edited,message.read';

/** Every table of every non-system schema whose rows, as text, contain `marker`. */
export async function tablesHolding(admin: { query: (q: string, p?: unknown[]) => Promise<{ rows: any[] }> }, marker: string): Promise<string[]> {
  const { rows: tables } = await admin.query(
    `select c.oid::regclass::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'`);
  const found: string[] = [];
  for (const { name } of tables) {
    const { rows } = await admin.query(`select exists (select 1 from ${name} x where x::text like $1) as hit`, [`%${marker}%`]);
    if (rows[0].hit) found.push(name);
  }
  return found;
}

t.test('DELETE /me: nothing of the account survives, not even in a replayed stream', async (t) => {
  const { app, db } = await buildTestApp(t);
  const url = await listen(app);
  const [alice, bob, carol] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol')];
  const marker = `marker${crypto.randomBytes(6).toString('hex')}`;
  const admin = await adminClient(t, db.url);

  // Bob's cursor before anything of alice's: the early Last-Event-ID.
  const first = await send(app, carol, { receiverId: bob.id, content: 'before alice' });
  const early = await openStream(`${url}/notifications/stream?types=${ALL}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': 's0' });
  await early.waitFor(2, 5000);
  const cursor = early.events.at(-1)!.id!;
  early.close();

  const m = await send(app, alice, { receiverId: bob.id, content: `my private phone number is ${marker}` });
  await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: `edited: ${marker}` });
  await call(app, bob, 'POST', `/messages/${m.id}/read`);
  await send(app, bob, { parentMessageId: m.id, content: `you wrote ${marker}` });
  const keyed = await call(app, alice, 'POST', '/messages', { receiverId: carol.id, content: `keyed ${marker}` }, { 'idempotency-key': `k-${marker}` });
  t.equal(keyed.statusCode, 201);
  t.ok((await tablesHolding(admin, marker)).includes('app_public.messages'), 'the marker is planted');

  t.equal((await call(app, alice, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204, 'the account is deleted');
  const after = await send(app, carol, { receiverId: bob.id, content: 'after alice' });

  t.strictSame(await tablesHolding(admin, marker), [], 'no table of any schema holds the account\'s words');

  const resumed = await openStream(`${url}/notifications/stream?types=${ALL}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': cursor });
  t.teardown(() => resumed.close());
  // Carol's later message arrives (a notification and a message.created):
  // everything before it in the replay has been seen by then.
  await resumed.waitFor(2, 5000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const replayed = resumed.events.map((e) => e.data).join('\n');
  t.notMatch(replayed, marker, 'the replay holds none of the deleted account\'s words');
  t.notMatch(replayed, new RegExp(`"(messageId|id)":${m.id}\\b`), 'nor any event about its messages');
  t.match(replayed, new RegExp(`"(messageId|id)":${after.id}\\b`), 'it does hold what came after the deletion');
  t.notOk(resumed.events.some((e) => e.event === 'reset'), 'no reset: the cursor is still a valid place to resume');
  t.ok(first.id < after.id);
});

t.test('a stream resumed from before what the prune removed gets reset', async (t) => {
  const { app, db } = await buildTestApp(t);
  const url = await listen(app);
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  await send(app, alice, { receiverId: bob.id, content: 'old news' });
  const admin = await adminClient(t, db.url);
  await admin.query(`update app_public.live_events set created_at = now() - interval '8 days'`);
  await admin.query(`call app_private.prune()`);
  const { rows: [h] } = await admin.query(`select pruned_through from app_private.stream_horizons where user_id = $1`, [bob.id]);
  t.ok(Number(h.pruned_through) >= 1, 'bob\'s horizon moved past the pruned event');

  const resumed = await openStream(`${url}/notifications/stream?types=${ALL}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': 's0' });
  t.teardown(() => resumed.close());
  const [reset] = await resumed.waitFor(1, 5000);
  t.equal(reset!.event, 'reset', 'a cursor below the horizon: reset first');
  await send(app, alice, { receiverId: bob.id, content: 'fresh' });
  const events = await resumed.waitFor(3, 5000);
  t.strictSame(events.slice(1).map((e) => e.event).sort(), ['message.created', 'notification'], 'then what comes next, and nothing older');

  const current = await openStream(`${url}/notifications/stream?types=${ALL}`, { authorization: `Bearer ${bob.token}`, 'last-event-id': events.at(-1)!.id! });
  t.teardown(() => current.close());
  await send(app, alice, { receiverId: bob.id, content: 'fresher' });
  const next = await current.waitFor(2, 5000);
  t.notOk(next.some((e) => e.event === 'reset'), 'a cursor above the horizon resumes without reset');
});
