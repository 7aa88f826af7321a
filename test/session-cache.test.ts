/**
 * Sessions cached in memory (src/auth/session-cache.ts): a request needs no
 * session lookup while the LISTEN connection is up, and every revocation —
 * logout on another instance, a DBA's DELETE in psql, account deletion —
 * reaches every instance through signalbox_sessions (migration 000007).
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { SessionCache } from '../src/auth/session-cache';
import { buildTestApp, call, signUp, type Session, type TestApp } from './helpers/app';
import { queryRecorder } from './helpers/count';
import { adminClient } from './helpers/db';
import { tcpProxy } from './helpers/proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the token is refused (the NOTIFY has a few ms to arrive), or gives up after 3 s. */
async function refusedSoon(app: TestApp['app'], who: Session): Promise<number> {
  let status = 0;
  for (let i = 0; i < 60; i++) {
    status = (await call(app, who, 'GET', '/me')).statusCode;
    if (status === 401) return status;
    await sleep(50);
  }
  return status;
}

const lookups = (recorder: ReturnType<typeof queryRecorder>) =>
  recorder.queries.filter((q) => q.includes('app_public.session_user_id(')).length;

t.test('a cached session needs no lookup; logout on another instance revokes it there', async (t) => {
  const recorder = queryRecorder();
  const one = await buildTestApp(t);
  const two = await buildTestApp(t, { shareWith: one, interceptors: [recorder.interceptor] });
  const alice = await signUp(one.app, 'alice');

  t.equal((await call(two.app, alice, 'GET', '/me')).statusCode, 200);
  recorder.reset();
  for (let i = 0; i < 5; i++) t.equal((await call(two.app, alice, 'GET', '/me')).statusCode, 200);
  t.equal(lookups(recorder), 0, 'five requests, no session lookup: the session came from memory');

  t.equal((await call(one.app, alice, 'POST', '/auth/logout')).statusCode, 204);
  t.equal(await refusedSoon(two.app, alice), 401, 'instance 2 refuses the token once the revocation arrives');
  t.equal((await call(one.app, alice, 'GET', '/me')).statusCode, 401, 'and instance 1 at once');
});

t.test('a DBA deleting sessions in psql revokes them on every instance', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200);
  t.equal((await call(app, bob, 'GET', '/me')).statusCode, 200);
  execFileSync('psql', [db.url, '-v', 'ON_ERROR_STOP=1', '-qc', `delete from app_private.sessions where user_id = ${alice.id}`]);
  t.equal(await refusedSoon(app, alice), 401, 'the deleted session is refused');
  t.equal((await call(app, bob, 'GET', '/me')).statusCode, 200, 'another user\'s session is untouched');
});

t.test('a DBA shortening a session\'s expiry is announced too', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200);
  const admin = await adminClient(t, db.url);
  await admin.query(`update app_private.sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' where user_id = $1`, [alice.id]);
  t.equal(await refusedSoon(app, alice), 401);
});

t.test('deleting the account revokes its sessions on the other instance', async (t) => {
  const one = await buildTestApp(t);
  const two = await buildTestApp(t, { shareWith: one });
  const alice = await signUp(one.app, 'alice');
  t.equal((await call(two.app, alice, 'GET', '/me')).statusCode, 200);
  t.equal((await call(one.app, alice, 'DELETE', '/me', { password: 'correct horse battery' })).statusCode, 204);
  t.equal(await refusedSoon(two.app, alice), 401);
});

t.test('without a LISTEN connection every request looks its session up', async (t) => {
  const recorder = queryRecorder();
  const { app } = await buildTestApp(t, { live: false, interceptors: [recorder.interceptor] });
  const alice = await signUp(app, 'alice');
  recorder.reset();
  for (let i = 0; i < 3; i++) await call(app, alice, 'GET', '/me');
  t.equal(lookups(recorder), 3);
});

t.test('while the LISTEN connection is down the cache is not used, and entries from before it are ignored', async (t) => {
  const recorder = queryRecorder();
  const { app, db } = await buildTestApp(t, { interceptors: [recorder.interceptor] });
  const alice = await signUp(app, 'alice');
  await call(app, alice, 'GET', '/me');
  recorder.reset();
  await call(app, alice, 'GET', '/me');
  t.equal(lookups(recorder), 0, 'cached while listening');

  const admin = await adminClient(t, db.url);
  await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'signalbox-listener' and datname = current_database()`);
  for (let i = 0; i < 40 && app.live.listening(); i++) await sleep(25);
  t.notOk(app.live.listening(), 'the LISTEN connection is down');
  // Revoked while nobody listens: the NOTIFY is lost.
  await admin.query(`delete from app_private.sessions where user_id = $1`, [alice.id]);
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 401, 'looked up while not listening: refused');

  for (let i = 0; i < 200 && !app.live.listening(); i++) await sleep(25);
  t.ok(app.live.listening(), 'reconnected');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 401, 'the entry from before the outage is not trusted');
});

t.test('a LISTEN connection that goes silent without closing is noticed within two probes and replaced', async (t) => {
  // Before: nothing probed the connection; a half-open one reported
  // "listening" for ever and the session cache trusted revocations it never
  // received (a logged-out token kept working on that instance).
  const one = await buildTestApp(t);
  const target = new URL(one.db.url);
  const proxy = await tcpProxy(t, Number(target.port || 5432), target.hostname || '127.0.0.1');
  const viaProxy = new URL(one.db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  const two = await buildTestApp(t, { shareWith: one, listenerUrl: viaProxy.toString(), env: { LISTEN_PROBE_MS: '200' } });
  const alice = await signUp(one.app, 'alice');
  const bob = await signUp(one.app, 'bob');
  t.equal((await call(two.app, alice, 'GET', '/me')).statusCode, 200, 'alice\'s session is cached on instance 2');
  const page = async () => (await call(two.app, bob, 'GET', `/conversations/${alice.id}/messages`)).json().messages.length as number;
  t.equal(await page(), 0, 'and bob\'s empty conversation with her');
  t.ok(two.app.live.listening(), 'instance 2 listens, through the proxy');

  proxy.stall();
  // Both announcements are lost on the silent connection.
  t.equal((await call(one.app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'lost announcement' })).statusCode, 201);
  t.equal((await call(one.app, alice, 'POST', '/auth/logout')).statusCode, 204);
  const started = Date.now();
  for (let i = 0; i < 200 && two.app.live.listening(); i++) await sleep(25);
  t.notOk(two.app.live.listening(), `declared down after ${Date.now() - started} ms (probes every 200 ms)`);
  t.equal((await call(two.app, alice, 'GET', '/me')).statusCode, 401, 'the revoked session is looked up, and refused');

  for (let i = 0; i < 200 && !two.app.live.listening(); i++) await sleep(25);
  t.ok(two.app.live.listening(), 'a new connection replaced it');
  t.equal(await page(), 1, 'the view cached before is gone: the message is there');
  const carol = await signUp(one.app, 'carol');
  t.equal((await call(two.app, carol, 'GET', '/me')).statusCode, 200);
  t.equal((await call(one.app, carol, 'POST', '/auth/logout')).statusCode, 204);
  t.equal(await refusedSoon(two.app, carol), 401, 'and revocations arrive on it');
});

t.test('SessionCache: a lookup that overlapped a revocation is not stored; expiry bounds an entry', async (t) => {
  let epoch = 1;
  const cache = new SessionCache({ ttlMs: 60_000, maxEntries: 10 });
  cache.attach({ listening: () => true, epoch: () => epoch });
  let loads = 0;
  const far = Date.now() + 3_600_000;

  // The revocation arrives while the lookup is on its way back.
  const racing = cache.userOf('k', async () => {
    loads++;
    cache.revoke([7]);
    return { userId: 7, expiresAt: far };
  });
  t.equal(await racing, 7, 'the request itself was authenticated by what it read');
  await cache.userOf('k', async () => (loads++, null));
  t.equal(loads, 2, 'but not stored: the next request looked it up again');

  t.equal(await cache.userOf('e', async () => (loads++, { userId: 8, expiresAt: Date.now() - 1 })), 8);
  await cache.userOf('e', async () => (loads++, null));
  t.equal(loads, 4, 'an entry past the session\'s expiry is not used');

  await cache.userOf('n', async () => (loads++, { userId: 9, expiresAt: far }));
  t.equal(await cache.userOf('n', async () => (loads++, null)), 9, 'cached');
  epoch++;
  t.equal(await cache.userOf('n', async () => (loads++, null)), null, 'a new epoch (a reconnect) ignores older entries');
  // A revocation drops that user's entries and no one else's.
  await cache.userOf('u1', async () => (loads++, { userId: 11, expiresAt: far }));
  await cache.userOf('u2', async () => (loads++, { userId: 11, expiresAt: far }));
  await cache.userOf('v1', async () => (loads++, { userId: 12, expiresAt: far }));
  const before = loads;
  cache.revoke([11]);
  t.equal(await cache.userOf('v1', async () => (loads++, null)), 12, 'another user\'s entry stays');
  t.equal(loads, before, 'without a lookup');
  t.equal(await cache.userOf('u1', async () => (loads++, null)), null, 'both of the revoked user\'s entries are gone');
  t.equal(await cache.userOf('u2', async () => (loads++, null)), null);
  cache.revoke('all');
  t.equal(cache.size, 0);
});
