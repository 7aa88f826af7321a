/**
 * Blocking (migration 000019): the rule is the database's (SB007), the API
 * answers 403 BLOCKED; the list is the blocker's alone.
 */
import t from 'tap';
import { buildTestApp, call, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';

t.test('a blocked user cannot send, reply or edit to the blocker; the conversation stays readable', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [alice, bob, carol] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol')];
  const fromBob = await send(app, bob, { receiverId: alice.id, content: 'before the block' });
  const fromAlice = await send(app, alice, { receiverId: bob.id, content: 'alice writes first' });

  t.equal((await call(app, alice, 'POST', `/users/${bob.id}/block`)).statusCode, 204, 'alice blocks bob');
  t.equal((await call(app, alice, 'POST', `/users/${bob.id}/block`)).statusCode, 204, 'again: idempotent');

  const refused = await call(app, bob, 'POST', '/messages', { receiverId: alice.id, content: 'hello?' });
  t.equal(refused.statusCode, 403, 'bob cannot send to alice');
  t.equal(refused.json().code, 'BLOCKED');
  const reply = await call(app, bob, 'POST', '/messages', { parentMessageId: fromAlice.id, content: 'a reply' });
  t.equal(reply.json().code, 'BLOCKED', 'nor reply to her message');
  const edit = await call(app, bob, 'PATCH', `/messages/${fromBob.id}`, { content: 'changed words' });
  t.equal(edit.json().code, 'BLOCKED', 'nor change the words of what he sent her');

  const page = await call(app, bob, 'GET', `/conversations/${alice.id}/messages`);
  t.strictSame(page.json().messages.map((m: { id: number }) => m.id), [fromAlice.id, fromBob.id], 'the conversation stays readable to bob');
  t.equal((await call(app, alice, 'GET', `/conversations/${bob.id}/messages`)).json().messages.length, 2, 'and to alice');
  t.equal((await call(app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'I may still write' })).statusCode, 201, 'the blocker may still write');
  t.equal((await call(app, bob, 'POST', '/messages', { receiverId: carol.id, content: 'hi carol' })).statusCode, 201, 'bob writes to others');

  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ n: number }>(`select count(*)::int as n from app_public.messages where sender_id = $1 and receiver_id = $2`, [bob.id, alice.id]);
  t.equal(rows[0]!.n, 1, 'nothing of bob\'s refused sends was stored');

  const list = await call(app, alice, 'GET', '/me/blocks');
  t.match(list.json(), { blocks: [{ user: { id: bob.id, username: bob.username }, blockedAt: /^\d{4}-\d\d-\d\dT.*Z$/ }] }, 'alice lists her block');
  t.strictSame((await call(app, bob, 'GET', '/me/blocks')).json(), { blocks: [] }, 'bob sees no block: not his');

  t.equal((await call(app, alice, 'DELETE', `/users/${bob.id}/block`)).statusCode, 204, 'alice unblocks bob');
  t.equal((await call(app, alice, 'DELETE', `/users/${bob.id}/block`)).statusCode, 204, 'again: idempotent');
  t.equal((await call(app, bob, 'POST', '/messages', { receiverId: alice.id, content: 'thanks' })).statusCode, 201, 'bob can write again');
});

t.test('blocking: hostile and odd inputs', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const self = await call(app, alice, 'POST', `/users/${alice.id}/block`);
  t.equal(self.statusCode, 400, 'nobody blocks themselves');
  t.equal(self.json().code, 'VALIDATION_ERROR');
  t.equal((await call(app, alice, 'POST', '/users/999999999/block')).json().code, 'NOT_FOUND', 'an unknown user: 404');
  t.equal((await call(app, alice, 'POST', '/users/abc/block')).statusCode, 400, 'not an id: 400');
  t.equal((await call(app, null, 'POST', `/users/${alice.id}/block`)).statusCode, 401, 'signed out: 401');
  t.equal((await call(app, null, 'GET', '/me/blocks')).statusCode, 401);
});

t.test('deleting either account deletes the block', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  await call(app, alice, 'POST', `/users/${bob.id}/block`);
  t.equal((await call(app, bob, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  const admin = await adminClient(t, db.url);
  const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from app_public.blocks where blocker_id = $1', [alice.id]);
  t.equal(rows[0]!.n, 0, 'the block went with bob\'s account');
});
