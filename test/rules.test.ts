/**
 * The database rules under concurrency and through the API: edits of one
 * message racing each other keep a strictly ordered history, and the
 * errors the triggers raise reach clients as the documented statuses.
 */
import t from 'tap';
import { mapDatabaseError } from '../src/http-errors';
import { buildTestApp, call, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';

t.test('20 concurrent edits of one message: history strictly ordered, edited_at = newest version', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false, env: { DATABASE_POOL_SIZE: '20' } });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const m = await send(app, alice, { receiverId: bob.id, content: 'v0' });
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => call(app, alice, 'PATCH', `/messages/${m.id}`, { content: `v${i + 1}` })),
  );
  t.ok(results.every((r) => r.statusCode === 200), 'every edit succeeded');
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ edited_at: Date; old_content: string }>(
    // Microseconds as text: a JS Date would hide ties below a millisecond.
    `select to_char(edited_at, 'YYYY-MM-DD HH24:MI:SS.US') as edited_at, old_content
       from app_public.message_history where message_id = $1 order by id`,
    [m.id],
  );
  t.equal(rows.length, 20, 'twenty versions');
  const times = rows.map((r) => String(r.edited_at));
  t.ok(times.every((x, i) => i === 0 || x > times[i - 1]!), 'each version is strictly later than the one before it');
  const { rows: [msg] } = await admin.query(
    `select to_char(edited_at, 'YYYY-MM-DD HH24:MI:SS.US') as edited_at, content from app_public.messages where id = $1`, [m.id]);
  t.equal(msg.edited_at, times.at(-1), 'the message\'s edited_at is its newest version\'s time');
  // The versions chain: each old_content is the content the edit before it wrote.
  t.equal(rows[0]!.old_content, 'v0');
  const history = (await call(app, bob, 'GET', `/messages/${m.id}/history`)).json().versions as { oldContent: string; editedAt: string }[];
  t.equal(history.length, 20);
  t.ok(history.every((v, i) => i === 0 || v.editedAt <= history[i - 1]!.editedAt), 'the API lists them newest first');
});

t.test('trigger errors map to documented statuses', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const missing = await call(app, alice, 'POST', '/messages', { parentMessageId: 999999999, content: 'to nothing' });
  t.equal(missing.statusCode, 404, 'a reply to a missing parent is a 404');
  t.equal(missing.json().code, 'NOT_FOUND');
  t.match(mapDatabaseError({ cause: { code: 'SB005' } }), { statusCode: 404, code: 'NOT_FOUND' }, 'SB005 (missing parent) -> 404');
  t.match(mapDatabaseError({ cause: { code: 'SB006' } }), { statusCode: 422, code: 'DERIVED_FIELD' }, 'SB006 (derived column) -> 422');
  const m = await send(app, alice, { receiverId: bob.id, content: 'hello' });
  const forged = await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: 'x', edited: false });
  t.equal(forged.statusCode, 400, 'the API has no way to write a derived field (unknown fields are rejected)');
});
