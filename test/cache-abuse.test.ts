/**
 * The view cache under abuse and failure: bounded in bytes against a user
 * who makes many large pages, read-your-writes across a Redis outage on two
 * instances, no cross-talk between two deployments that share a Redis, and
 * @fastify/caching's store as the one the views use.
 */
import t from 'tap';
import { createRedisCacheClient } from '../src/cache/redis-store';
import { buildTestApp, call, send, signUp } from './helpers/app';
import { adminClient } from './helpers/db';
import { tcpProxy } from './helpers/proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the memory cache is bounded in bytes: many large distinct pages stay within the budget', async (t) => {
  const budget = 2 * 1024 * 1024;
  const { app, db } = await buildTestApp(t, {
    live: false,
    env: { CACHE_MAX_BYTES: String(budget), CACHE_MAX_ENTRY_BYTES: String(1024 * 1024) },
  });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  // The pattern: 100 messages of 10,000 \u0001 (6 bytes each in JSON).
  const admin = await adminClient(t, db.url);
  await admin.query(
    `insert into app_public.messages (sender_id, receiver_id, content)
     select $1, $2, repeat(chr(1), 10000) from generate_series(1, 100)`,
    [alice.id, bob.id],
  );
  const { rows } = await admin.query<{ id: string }>('select id from app_public.messages order by id');
  const ids = rows.map((r) => Number(r.id));

  // Every distinct ?before= is a new key: 99 pages of 5 messages (~300 KB each).
  let stored = 0;
  for (const before of ids.slice(1)) {
    const res = await call(app, bob, 'GET', `/conversations/${alice.id}/messages?limit=5&before=${before}`);
    t.equal(res.statusCode, 200);
    stored += res.body.length * 2;
  }
  const stats = app.viewCache.stats()!;
  t.ok(stored > 10 * budget, `the pages add up to ${(stored / 1e6).toFixed(0)} MB of entries`);
  t.ok(stats.bytes <= budget, `the store holds ${stats.bytes} bytes, within its ${budget}-byte budget`);
  t.ok(stats.entries < ids.length, `older entries were pushed out (${stats.entries} held)`);
  const newest = await call(app, bob, 'GET', `/conversations/${alice.id}/messages?limit=5&before=${ids.at(-1)}`);
  t.equal(newest.headers['x-cache'], 'HIT', 'the most recent page is still cached');

  // A page above the per-entry limit is answered, never stored.
  const huge = `/conversations/${alice.id}/messages?limit=100`;
  t.ok((await call(app, bob, 'GET', huge)).body.length > 1024 * 1024, 'a 6 MB page');
  t.equal((await call(app, bob, 'GET', huge)).headers['x-cache'], 'MISS', 'is not cached');
});


t.test('a Redis outage never hides a write from its writer, on either instance', async (t) => {
  const proxy = await tcpProxy(t, 6379);
  const clients = [createRedisCacheClient(`redis://127.0.0.1:${proxy.port}`), createRedisCacheClient(`redis://127.0.0.1:${proxy.port}`)];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const one = await buildTestApp(t, { cacheClient: clients[0] });
  const two = await buildTestApp(t, { shareWith: one, cacheClient: clients[1] });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  await send(one.app, alice, { receiverId: bob.id, content: 'before the outage' });
  await sleep(300);
  for (const { app } of [one, two]) {
    await call(app, alice, 'GET', '/conversations');
    t.equal((await call(app, alice, 'GET', '/conversations')).headers['x-cache'], 'HIT', 'warm on both instances');
  }

  await proxy.cut();
  const during = await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'during the outage' });
  t.equal(during.statusCode, 201, 'the send is acknowledged while Redis is away');
  const newest = () => (r: { json(): { conversations: { lastMessage: { content: string } }[] } }) =>
    r.json().conversations[0]!.lastMessage.content;
  for (const { app } of [one, two]) {
    const res = await call(app, alice, 'GET', '/conversations');
    t.equal(newest()(res), 'during the outage', 'answered from the database meanwhile');
  }
  await sleep(500);
  await proxy.restore();
  // After Redis is back (ioredis reconnects within about 2 s), every answer
  // on both instances shows the acknowledged write: watched for three
  // seconds, and on until the cache serves hits again (at most ten).
  const watchedUntil = Date.now() + 3000;
  const giveUpAt = Date.now() + 10_000;
  let checks = 0;
  let stale = 0;
  let hits = 0;
  while (Date.now() < watchedUntil || (hits === 0 && Date.now() < giveUpAt)) {
    for (const { app } of [one, two]) {
      const res = await call(app, alice, 'GET', '/conversations');
      checks++;
      if (newest()(res) !== 'during the outage') stale++;
      if (res.headers['x-cache'] === 'HIT') hits++;
    }
    await sleep(50);
  }
  t.equal(stale, 0, `no stale answer in ${checks} checks after the outage`);
  t.ok(hits > 0, `and the cache is in use again (${hits} hits)`);
});

t.test('two deployments on one Redis never see each other\'s entries', async (t) => {
  const clients = [createRedisCacheClient('redis://127.0.0.1:6379'), createRedisCacheClient('redis://127.0.0.1:6379')];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const a = await buildTestApp(t, { cacheClient: clients[0], live: false });
  const b = await buildTestApp(t, { cacheClient: clients[1], live: false });
  const [a1, a2] = [await signUp(a.app, 'alice'), await signUp(a.app, 'bob')];
  const [b1] = [await signUp(b.app, 'carol')];
  t.equal(a1.id, b1.id, 'user ids collide across the two databases');
  await send(a.app, a1, { receiverId: a2.id, content: 'secret of deployment A' });
  await call(a.app, a1, 'GET', '/conversations');
  t.equal((await call(a.app, a1, 'GET', '/conversations')).headers['x-cache'], 'HIT');
  const other = await call(b.app, b1, 'GET', '/conversations');
  t.equal(other.headers['x-cache'], 'MISS', 'deployment B misses');
  t.notOk(other.body.includes('secret'), 'and shows nothing of A');
  t.strictSame(other.json().conversations, []);
});

t.test('@fastify/caching\'s store is the views\' store; its ETag shortcut never answers before authentication', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  await send(app, alice, { receiverId: bob.id, content: 'hello' });
  const sets: string[] = [];
  const store = app.cache as unknown as { set: (...args: unknown[]) => void };
  const original = store.set;
  store.set = (...args: unknown[]) => {
    sets.push((args[0] as { id: string }).id);
    return original(...args);
  };
  const miss = await call(app, alice, 'GET', '/conversations');
  t.ok(sets.some((id) => id.includes('/conversations')), 'the view was stored through fastify.cache');
  const anonymous = await app.inject({ method: 'GET', url: '/conversations', headers: { 'if-none-match': String(miss.headers.etag) } });
  t.equal(anonymous.statusCode, 401, 'a known ETag without a session is a 401, not a 304');
  const asBob = await call(app, bob, 'GET', '/conversations', undefined, { 'if-none-match': String(miss.headers.etag) });
  t.equal(asBob.statusCode, 200, 'another user with alice\'s ETag gets his own view');
});

// Why signalbox does not call reply.etag(): @fastify/caching's shortcut, as
// shipped, answers 304 to anyone presenting a stored ETag, before the auth
// hook and for any URL. If this starts failing, the plugin changed: the
// docs/cache.md's reasoning should be revisited.
t.test('@fastify/caching\'s reply.etag() shortcut answers before authentication (why it is not used)', async (t) => {
  const { default: Fastify } = await import('fastify');
  const { default: caching } = await import('@fastify/caching');
  const probe = Fastify();
  t.teardown(() => probe.close());
  await probe.register(caching, { privacy: 'private' });
  await probe.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer alice') await reply.code(401).send({ code: 'UNAUTHORIZED' });
    });
    scope.get('/conversations', async (_request, reply) => {
      reply.etag('"alice-view-v1"');
      return { secret: 'alice only' };
    });
  });
  const owner = await probe.inject({ url: '/conversations', headers: { authorization: 'Bearer alice' } });
  t.equal(owner.statusCode, 200);
  const anonymous = await probe.inject({ url: '/conversations', headers: { 'if-none-match': '"alice-view-v1"' } });
  t.equal(anonymous.statusCode, 304, 'an anonymous request with her ETag gets 304 from the plugin');
  const elsewhere = await probe.inject({ url: '/no-such-route', headers: { 'if-none-match': '"alice-view-v1"' } });
  t.equal(elsewhere.statusCode, 304, 'so does any URL');
});
