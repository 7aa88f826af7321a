/**
 * The 60-second conversation-view cache: per user and URL, invalidated by
 * writes before the reply is sent, revalidated with ETags. These apps run
 * without the LISTEN connection, so every eviction seen here is the
 * writer's own, synchronous one (live.test.ts covers the NOTIFY path, whose
 * late second eviction would otherwise turn an expected HIT into a MISS).
 */
import t from 'tap';
import { createMemoryCacheClient } from '../src/cache/memory-store';
import { buildTestApp, call, send, signUp } from './helpers/app';
import { queryRecorder } from './helpers/count';

t.test('HIT, MISS, headers and ETag', async (t) => {
  const recorder = queryRecorder();
  const { app } = await buildTestApp(t, { interceptors: [recorder.interceptor], live: false });
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  await send(app, alice, { receiverId: bob.id, content: 'hello' });

  for (const url of ['/conversations', `/conversations/${bob.id}/messages`]) {
    const miss = await call(app, alice, 'GET', url);
    t.equal(miss.statusCode, 200);
    t.equal(miss.headers['x-cache'], 'MISS', `${url}: first GET is a MISS`);
    t.equal(miss.headers['cache-control'], 'private, no-cache');
    t.match(miss.headers.etag, /^"[A-Za-z0-9_-]+"$/);
    recorder.reset();
    const hit = await call(app, alice, 'GET', url);
    t.equal(hit.headers['x-cache'], 'HIT', `${url}: second GET is a HIT`);
    t.equal(hit.body, miss.body, 'with the same body');
    t.strictSame(recorder.business(), [], 'a HIT runs no view query');
    const notModified = await call(app, alice, 'GET', url, undefined, { 'if-none-match': String(miss.headers.etag) });
    t.equal(notModified.statusCode, 304, 'a matching If-None-Match gets 304');
    t.equal(notModified.body, '');
    const other = await call(app, alice, 'GET', url, undefined, { 'if-none-match': '"something-else"' });
    t.equal(other.statusCode, 200, 'a different ETag gets the body');
  }
});

t.test('one user never gets another user\'s entry', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');
  await send(app, alice, { receiverId: bob.id, content: 'alice to bob, private' });
  const a = await call(app, alice, 'GET', `/conversations/${bob.id}/messages`);
  t.equal(a.headers['x-cache'], 'MISS');
  // Same URL, different caller: carol's conversation with bob is empty.
  const c = await call(app, carol, 'GET', `/conversations/${bob.id}/messages`);
  t.equal(c.headers['x-cache'], 'MISS', 'the same URL for another user is a MISS');
  t.strictSame(c.json().messages, []);
  t.notOk(c.body.includes('private'));
  // An ETag from alice's entry does not unlock anything for carol.
  const probe = await call(app, carol, 'GET', `/conversations/${bob.id}/messages`, undefined, { 'if-none-match': String(a.headers.etag) });
  t.equal(probe.statusCode, 200, 'another user\'s ETag gets no 304');
  t.notOk(probe.body.includes('private'));
  const anonymous = await call(app, null, 'GET', `/conversations/${bob.id}/messages`, undefined, { 'if-none-match': String(a.headers.etag) });
  t.equal(anonymous.statusCode, 401, 'and without a token it is a 401, not a 304');
});

t.test('writes evict both participants\' views before the reply', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const carol = await signUp(app, 'carol');
  const first = await send(app, alice, { receiverId: bob.id, content: 'first' });
  const views = [
    [alice, `/conversations/${bob.id}/messages`],
    [bob, `/conversations/${alice.id}/messages`],
    [alice, '/conversations'],
    [bob, '/conversations'],
  ] as const;
  const warm = async () => {
    for (const [who, url] of views) await call(app, who, 'GET', url);
    for (const [who, url] of views) t.equal((await call(app, who, 'GET', url)).headers['x-cache'], 'HIT', `warm: ${who.username} ${url}`);
  };
  const expectFresh = async (what: string, check: (aliceMsgs: { content: string; read: boolean }[]) => boolean) => {
    for (const [who, url] of views) {
      const res = await call(app, who, 'GET', url);
      t.equal(res.headers['x-cache'], 'MISS', `after ${what}: ${who.username} ${url} is a MISS`);
    }
    const msgs = (await call(app, alice, 'GET', `/conversations/${bob.id}/messages`)).json().messages;
    t.ok(check(msgs), `after ${what}: the new data is there`);
  };

  await warm();
  // carol's unrelated write does not evict alice and bob.
  await send(app, carol, { receiverId: carol.id, content: 'note' });
  t.equal((await call(app, alice, 'GET', '/conversations')).headers['x-cache'], 'HIT', 'an unrelated write evicts nothing');

  await send(app, bob, { receiverId: alice.id, content: 'second' });
  await expectFresh('send', (msgs) => msgs[0]?.content === 'second');
  await warm();
  await call(app, alice, 'PATCH', `/messages/${first.id}`, { content: 'first, edited' });
  await expectFresh('edit', (msgs) => msgs.some((m) => m.content === 'first, edited'));
  await warm();
  await call(app, bob, 'POST', `/messages/${first.id}/read`);
  await expectFresh('read', (msgs) => msgs.some((m) => m.content === 'first, edited' && m.read));
  await warm();
  await call(app, alice, 'POST', `/conversations/${bob.id}/read`);
  await expectFresh('conversation read', (msgs) => msgs.every((m) => m.read));

  // Account deletion: bob's views of alice go at once.
  await call(app, bob, 'GET', '/conversations');
  t.equal((await call(app, bob, 'GET', '/conversations')).headers['x-cache'], 'HIT');
  t.equal((await call(app, alice, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  const after = await call(app, bob, 'GET', '/conversations');
  t.equal(after.headers['x-cache'], 'MISS', 'after account deletion: the partner\'s list is a MISS');
  t.strictSame(after.json().conversations, [], 'and the conversation with the deleted user is gone');
  t.equal((await call(app, bob, 'GET', `/conversations/${alice.id}/messages`)).statusCode, 404, 'the deleted user\'s conversation is a 404');
});

t.test('entries live 60 seconds (fake clock)', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  t.teardown(() => {
    Date.now = realNow;
  });
  t.equal((await call(app, alice, 'GET', '/conversations')).headers['x-cache'], 'MISS');
  offset = 59_000;
  t.equal((await call(app, alice, 'GET', '/conversations')).headers['x-cache'], 'HIT', 'still cached at 59 s');
  offset = 60_500;
  t.equal((await call(app, alice, 'GET', '/conversations')).headers['x-cache'], 'MISS', 'expired after 60 s');
});

t.test('the memory store reads the clock at every check, so an entry never outlives its ttl', async (t) => {
  // CI once saw a HIT just after the fake clock passed 60 s: lru-cache
  // memoised "now" until a 1 ms timer cleared it, and the next read came
  // before that timer ran. Two reads in one tick, across the expiry:
  const store = createMemoryCacheClient({ maxBytes: 1024 * 1024 });
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  t.teardown(() => {
    Date.now = realNow;
  });
  const key = { segment: 's', id: 'k' };
  await store.set(key, 'v', 1000);
  t.equal((await store.get(key))?.item, 'v', 'fresh');
  offset = 1500;
  t.equal(await store.get(key), null, 'expired at once, with no timer run in between');
  t.equal(await store.has(key), false);
});

t.test('a read racing an eviction never stores stale data for later', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  await send(app, alice, { receiverId: bob.id, content: 'before' });
  // Hold bob's view query open, commit a write and evict meanwhile, then
  // let the (stale) read finish and store its result.
  const original = app.viewCache.serve;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  app.viewCache.serve = (request, reply, build) =>
    original(request, reply, async () => {
      const stale = await build();
      await gate;
      return stale;
    });
  const slowRead = call(app, bob, 'GET', `/conversations/${alice.id}/messages`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  app.viewCache.serve = original;
  await send(app, alice, { receiverId: bob.id, content: 'after' });
  release();
  const stale = await slowRead;
  t.notOk(stale.body.includes('"after"'), 'the raced read answered with its own snapshot');
  const next = await call(app, bob, 'GET', `/conversations/${alice.id}/messages`);
  t.equal(next.headers['x-cache'], 'MISS', 'but its stale result was stored under the evicted version');
  t.ok(next.body.includes('"after"'), 'so the next read sees the write');
});
