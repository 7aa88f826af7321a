/**
 * Idempotency-Key on POST /messages: a retry after a lost answer returns the
 * original message and writes nothing; the key is claimed in the message's
 * own transaction.
 */
import t, { type Test } from 'tap';
import { buildTestApp, call, listen, signUp, type TestApp } from './helpers/app';
import { adminClient } from './helpers/db';

async function count(t: Test, app: TestApp, senderId: number): Promise<number> {
  const client = await adminClient(t, app.db.url);
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from app_public.messages where sender_id = $1', [senderId]);
  return rows[0]!.n;
}

t.test('the same key and request: 201 once, then 200 with the same message, nothing written', async (t) => {
  const one = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const key = { 'idempotency-key': 'send-1' };
  const first = await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'hello' }, key);
  t.equal(first.statusCode, 201);
  const again = await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: '  hello ' }, key);
  t.equal(again.statusCode, 200, 'a retry answers 200');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.strictSame(again.json(), first.json(), 'with the original message');
  t.equal(await count(t, one, alice.id), 1, 'and writes nothing');

  const other = await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'something else' }, key);
  t.equal(other.statusCode, 409, 'the same key for another message is a 409');
  t.equal(other.json().code, 'IDEMPOTENCY_KEY_REUSED');
  t.equal((await call(one.app, bob, 'POST', '/messages', { receiverId: alice.id, content: 'hello' }, key)).statusCode, 201, 'keys are per sender');
  t.equal((await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'no key' })).statusCode, 201, 'no key, no idempotency');
  for (const bad of ['', 'has space', 'x'.repeat(256), 'naïve']) {
    const res = await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'x' }, { 'idempotency-key': bad });
    t.equal(res.statusCode, 400, `key ${JSON.stringify(bad.slice(0, 12))}: 400`);
  }

  // After 24 hours a key may be used again.
  const admin = await adminClient(t, one.db.url);
  await admin.query(`update app_public.idempotency_keys set created_at = now() - interval '25 hours'`);
  t.equal((await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'hello' }, key)).statusCode, 201, 'an expired key starts afresh');
});

t.test('concurrent sends with one key: exactly one message', async (t) => {
  const one = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const results = await Promise.all(
    Array.from({ length: 6 }, () => call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'once' }, { 'idempotency-key': 'race' })),
  );
  const statuses = results.map((r) => r.statusCode).sort();
  t.strictSame(statuses, [200, 200, 200, 200, 200, 201], 'one 201, the rest replay it');
  t.equal(new Set(results.map((r) => r.json().id)).size, 1, 'all with the same message');
  t.equal(await count(t, one, alice.id), 1);
});

t.test('the answer is lost after the commit: the retry gets the stored message', async (t) => {
  const one = await buildTestApp(t, { live: false });
  let dropped = false;
  // The connection dies after the transaction committed, before the answer.
  one.app.addHook('onSend', async (request) => {
    if (request.url === '/messages' && !dropped) {
      dropped = true;
      request.raw.socket.destroy();
    }
  });
  const url = await listen(one.app);
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const post = () =>
    fetch(`${url}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json', 'idempotency-key': 'lost-answer' },
      body: JSON.stringify({ receiverId: bob.id, content: 'did it arrive?' }),
    });
  const lost = await post().then(() => null, (error: unknown) => error);
  t.ok(lost, 'the first answer never arrived');
  t.equal(await count(t, one, alice.id), 1, 'although the message was stored');
  const retry = await post();
  t.equal(retry.status, 200, 'the retry is answered from the key');
  t.equal(((await retry.json()) as { content: string }).content, 'did it arrive?');
  t.equal(await count(t, one, alice.id), 1, 'and nothing was written twice');
});
