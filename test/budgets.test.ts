/**
 * One socket or one malformed request cannot take the service from anyone,
 * and every answer is honest: slow senders are cut, one address cannot
 * hold every connection, text that is not text is refused (not altered),
 * the HTTP layer's own errors carry a code, a client that hangs up is not
 * a database failure, private answers say no-store, and the database's
 * "not now" (timeouts, locks) is a 503 with a code, never a 500.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import { buildApp } from '../src/app';
import { createRedisCacheClient } from '../src/cache/redis-store';
import { loadConfig } from '../src/config';
import { mapDatabaseError } from '../src/http-errors';
import { buildTestApp, call, listen, send, signUp } from './helpers/app';
import { createDatabasePool } from '../src/db/pool';
import { adminClient, createTestPool } from './helpers/db';
import { openStream } from './helpers/sse';
import { within } from './helpers/time';

/** Opens a raw TCP connection to `base` (optionally from another loopback address). */
function connect(base: string, localAddress?: string): Promise<net.Socket> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: Number(port), ...(localAddress ? { localAddress } : {}) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server writes until it closes the socket (or `ms` pass). */
function readUntilClose(socket: net.Socket, ms: number): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    const timer = setTimeout(() => resolve({ text, closed: false }), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => {});
  });
}

const jsonBody = (raw: string) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { code?: string; statusCode?: number };

t.test('text that is not text is refused with 400, and nothing is stored', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const admin = await adminClient(t, db.url);
  const count = async () => Number((await admin.query('select count(*) from app_public.messages')).rows[0].count);
  const before = await count();
  const bodies: [string, Buffer][] = [
    ['invalid UTF-8 (a lone 0xff byte)', Buffer.concat([Buffer.from(`{"receiverId":${bob.id},"content":"a`), Buffer.from([0xff]), Buffer.from('b"}')])],
    ['a truncated UTF-8 sequence', Buffer.concat([Buffer.from(`{"receiverId":${bob.id},"content":"a`), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])],
    ['a lone high surrogate escape', Buffer.from(`{"receiverId":${bob.id},"content":"a\\ud800b"}`)],
    ['a lone low surrogate escape', Buffer.from(`{"receiverId":${bob.id},"content":"\\udc00"}`)],
    ['a lone surrogate in a key', Buffer.from(`{"receiverId":${bob.id},"content":"ok","\\ud800":1}`)],
  ];
  for (const [what, payload] of bodies) {
    const res = await app.inject({ method: 'POST', url: '/messages', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' }, payload });
    t.equal(res.statusCode, 400, `${what}: 400`);
    t.equal(res.json().code, 'VALIDATION_ERROR', `${what}: VALIDATION_ERROR`);
  }
  t.equal(await count(), before, 'no message was stored');
  const pair = await send(app, alice, { receiverId: bob.id, content: 'a real pair: \ud83d\ude00 and é' });
  t.equal(pair.content, 'a real pair: 😀 and é', 'well-formed text, a surrogate pair included, is stored as sent');
});

t.test('the HTTP layer\'s own errors carry a code', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const base = await listen(app);

  const big = await connect(base);
  t.teardown(() => big.destroy());
  const bigAnswer = readUntilClose(big, 5000);
  big.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`);
  const { text: overflow } = await bigAnswer;
  t.match(overflow, /^HTTP\/1\.1 431 /, 'headers over 16 KB: 431');
  t.equal(jsonBody(overflow).code, 'HEADERS_TOO_LARGE');

  const smuggle = await connect(base);
  t.teardown(() => smuggle.destroy());
  const smuggleAnswer = readUntilClose(smuggle, 5000);
  smuggle.write('POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  const { text: smuggled } = await smuggleAnswer;
  t.match(smuggled, /^HTTP\/1\.1 400 /, 'Content-Length with Transfer-Encoding (a smuggling attempt): 400');
  t.equal(jsonBody(smuggled).code, 'MALFORMED_REQUEST');
});

t.test('a slow sender is cut within the request timeout', async (t) => {
  const { app } = await buildTestApp(t, { live: false, env: { REQUEST_TIMEOUT_MS: '1000' } });
  const base = await listen(app);
  const slow = await connect(base);
  t.teardown(() => slow.destroy()); // else, uncut, it would hold app.close() open
  const answer = readUntilClose(slow, 6000);
  slow.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
  const drip = setInterval(() => slow.writable && slow.write(' '), 200);
  t.teardown(() => clearInterval(drip));
  const { text, closed } = await answer;
  clearInterval(drip);
  t.ok(closed, 'the server closed the connection');
  t.match(text, /^HTTP\/1\.1 408 /, 'with 408');
  t.equal(jsonBody(text).code, 'REQUEST_TIMEOUT');
});

t.test('one address cannot hold every connection', async (t) => {
  const { app } = await buildTestApp(t, { live: false, env: { MAX_CONNECTIONS_PER_ADDRESS: '5' } });
  const base = await listen(app);
  const sockets = await Promise.all(Array.from({ length: 8 }, () => connect(base)));
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const states = await Promise.all(sockets.map((s) => readUntilClose(s, 500)));
  t.equal(states.filter((s) => s.closed).length, 3, 'the three over the cap were closed at once');
  // Another address still gets in, and is served.
  const other = await connect(base, '127.0.0.2');
  t.teardown(() => other.destroy());
  const answer = readUntilClose(other, 3000);
  other.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match((await answer).text, /^HTTP\/1\.1 200 /, 'a client from another address is served');
});

t.test('private answers say no-store; the revalidated views keep private, no-cache', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const m = await send(app, alice, { receiverId: bob.id, content: 'hello cache headers' });
  for (const url of ['/me', `/messages/${m.id}`, '/search?q=hello', '/notifications', '/inbox/unread', `/messages/${m.id}/history`]) {
    const res = await call(app, bob, 'GET', url);
    t.equal(res.headers['cache-control'], 'no-store', `${url}: no-store`);
  }
  t.equal((await call(app, bob, 'GET', '/nope')).headers['cache-control'], 'no-store', 'an error answer too');
  const page = await call(app, bob, 'GET', `/conversations/${alice.id}/messages`);
  t.match(page.headers['cache-control'], /private/, 'the conversation page keeps its revalidation headers');
});

t.test('a client that hangs up mid-request is not a database failure', async (t) => {
  const lines: { level: number; msg: string; code?: string }[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const { db, pool } = await createTestPool(t);
  const config = loadConfig({ DATABASE_URL: db.url, CHECK_SHAPES: '1' });
  const app = await buildApp({ config, pool, logger: { level: 'info', stream } });
  t.teardown(() => app.close());
  const base = await listen(app);
  const alice = await signUp(app, 'alice');
  for (let i = 0; i < 5; i++) {
    const socket = await connect(base);
    socket.write(`POST /messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"content":"par`);
    await new Promise((r) => setTimeout(r, 50));
    socket.resetAndDestroy();
  }
  await within((async () => { while (lines.filter((l) => /closed the connection/.test(l.msg)).length < 5) await new Promise((r) => setTimeout(r, 20)); })(), 5000, 'the aborts were seen');
  t.strictSame(lines.filter((l) => l.level >= 50), [], 'nothing at error level');
  t.notOk(lines.some((l) => l.code === 'DATABASE_UNAVAILABLE' || /DATABASE_UNAVAILABLE/.test(l.msg)), 'and nothing called a database failure');
});

t.test('an error answer to a request with a body reaches its client over a real socket', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const base = await listen(app);
  const alice = await signUp(app, 'alice');
  const res = await within(fetch(`${base}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ parentMessageId: 999999999, content: 'to nothing' }),
  }), 5000, 'the 404');
  t.equal(res.status, 404, 'the 404 arrives (the body was read, the client still waits)');
  t.equal(((await res.json()) as { code: string }).code, 'NOT_FOUND');
});

t.test('the database\'s "not now" is 503 DATABASE_BUSY with Retry-After, never 500', async (t) => {
  for (const [code, what] of [['57014', 'statement timeout'], ['55P03', 'lock not available'], ['40P01', 'deadlock, retries spent'], ['40001', 'serialization failure']]) {
    t.match(mapDatabaseError({ cause: { code } }), { statusCode: 503, code: 'DATABASE_BUSY' }, `${code} (${what})`);
  }
});

t.test('a held lock costs only its own user: others\' sends and reads go on, the blocked ones get 503, never 500', async (t) => {
  const { db, pool } = await createTestPool(t);
  const readPool = await createDatabasePool(db.runtimeUrl, { maximumPoolSize: 3, checkShapes: true });
  t.teardown(() => readPool.end());
  const config = loadConfig({
    DATABASE_URL: db.url, CHECK_SHAPES: '1', LOG_LEVEL: 'silent',
    DATABASE_POOL_SIZE: '5', DATABASE_READ_POOL_SIZE: '3', LOCK_TIMEOUT_MS: '500', POOL_ACQUIRE_TIMEOUT_MS: '1000', USER_MAX_CONCURRENT: '4',
  });
  const app = await buildApp({ config, pool, readPool, logger: false });
  t.teardown(() => app.close());
  const [victim, attacker, alice, bob] = [await signUp(app, 'victim'), await signUp(app, 'attacker'), await signUp(app, 'alice'), await signUp(app, 'bob')];
  await send(app, attacker, { receiverId: victim.id, content: 'before the lock' });
  // A DBA's session holds the victim's delivery counter.
  const dba = await adminClient(t, db.url);
  await dba.query('begin');
  await dba.query('select * from app_private.delivery_counters where user_id = $1 for update', [victim.id]);

  const blocked = Promise.all(Array.from({ length: 15 }, (_, i) => call(app, attacker, 'POST', '/messages', { receiverId: victim.id, content: `stuck ${i}` })));
  await new Promise((r) => setTimeout(r, 100));
  const others = await within(Promise.all([
    call(app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'unrelated send' }),
    call(app, bob, 'GET', '/inbox/unread'),
    call(app, bob, 'GET', `/conversations/${alice.id}/messages`),
  ]), 3000, 'the other users\' requests (blocked for the lock\'s whole life before: 60 s)');
  t.strictSame(others.map((r) => r.statusCode), [201, 200, 200], 'an unrelated send and reads are served meanwhile');
  const health = (await app.inject({ method: 'GET', url: '/healthz' })).json();
  t.ok(Array.isArray(health.pools) && health.pools.length === 2, '/healthz lists the primary\'s two pools');

  const answers = await blocked;
  t.strictSame(answers.filter((r) => r.statusCode >= 500 && r.json().code !== 'DATABASE_BUSY').map((r) => r.body), [], 'no 500: every blocked send is 503 DATABASE_BUSY');
  t.ok(answers.every((r) => r.statusCode === 503 && r.headers['retry-after']), 'each with Retry-After');
  const { rows: [n] } = await dba.query(`select count(*)::int as n from app_public.messages where content like 'stuck %'`);
  t.equal(n.n, 0, 'and none of them was half-written');
  await dba.query('rollback');
  t.equal((await call(app, attacker, 'POST', '/messages', { receiverId: victim.id, content: 'after the lock' })).statusCode, 201, 'once the lock is gone the victim is reachable again');
});

t.test('a logged-out session\'s streams end on every instance within a second, not at the next heartbeat', async (t) => {
  const env = { SSE_HEARTBEAT_MS: '60000' };
  const one = await buildTestApp(t, { env });
  const two = await buildTestApp(t, { env, shareWith: one });
  const url2 = await listen(two.app);
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const stream = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${bob.token}` });
  t.teardown(() => stream.close());
  t.equal(stream.status, 200);
  const other = await openStream(`${url2}/notifications/stream`, { authorization: `Bearer ${alice.token}` });
  t.teardown(() => other.close());
  t.equal((await call(one.app, bob, 'POST', '/auth/logout')).statusCode, 204, 'bob logs out on the other instance');
  await within(stream.closed, 1500, 'bob\'s stream ends');
  t.pass('bob\'s stream ended within a second and a half (the heartbeat is a minute)');
  await new Promise((r) => setTimeout(r, 300));
  const aliceClosed = await Promise.race([other.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);
  t.notOk(aliceClosed, 'alice\'s stream, another session, stays open');
});

t.test('each user has a request budget; one user\'s flood is refused before it costs anyone a query', async (t) => {
  const { app } = await buildTestApp(t, { live: false, env: { USER_RATE_LIMIT: '5' } });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await call(app, alice, 'GET', '/me')).statusCode);
  t.strictSame(statuses, [200, 200, 200, 200, 200, 429, 429], 'the sixth request within a minute is refused');
  const refused = await call(app, alice, 'GET', '/inbox/unread');
  t.equal(refused.json().code, 'RATE_LIMITED');
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After');
  t.equal((await call(app, bob, 'GET', '/me')).statusCode, 200, 'another user is unaffected');
});

t.test('the send budget: past it a user gets 429 SEND_RATE_LIMITED; other users, reads and SQL are not limited', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false, env: { SEND_RATE_LIMIT: '3' } });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const sendAs = (who: typeof alice, to: typeof alice, content: string) => call(app, who, 'POST', '/messages', { receiverId: to.id, content });
  t.equal((await call(app, alice, 'POST', '/messages', { receiverId: bob.id })).statusCode, 400, 'a malformed send is refused first, and not counted');
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await sendAs(alice, bob, `m${i}`)).statusCode);
  t.strictSame(statuses, [201, 201, 201, 429, 429], 'the fourth send within a minute is refused');
  const refused = await sendAs(alice, bob, 'one more');
  t.equal(refused.json().code, 'SEND_RATE_LIMITED');
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After');
  t.equal((await sendAs(bob, alice, 'hello')).statusCode, 201, 'another user sends');
  t.equal((await call(app, alice, 'GET', `/conversations/${bob.id}/messages`)).statusCode, 200, 'alice still reads');
  t.equal((await call(app, alice, 'PATCH', `/messages/${(await sendAs(bob, alice, 'edit me?')).json().id}`, { content: 'x' })).statusCode, 403, 'and other writes are not sends (this one is refused for its own reason)');
  const admin = await adminClient(t, db.url);
  await admin.query(`insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, 'bulk ' || g from generate_series(1, 10) g`, [alice.id, bob.id]);
  const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from app_public.messages where sender_id = $1', [alice.id]);
  t.equal(rows[0]!.n, 13, 'a DBA\'s INSERT of 10 is not limited: 3 sent, 10 inserted');
});

t.test('the send budget is shared by every instance through Redis', async (t) => {
  const clients = [createRedisCacheClient('redis://127.0.0.1:6379'), createRedisCacheClient('redis://127.0.0.1:6379')];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const one = await buildTestApp(t, { live: false, cacheClient: clients[0], env: { SEND_RATE_LIMIT: '3' } });
  const two = await buildTestApp(t, { live: false, cacheClient: clients[1], shareWith: one, env: { SEND_RATE_LIMIT: '3' } });
  const [alice, bob] = [await signUp(one.app, 'alice'), await signUp(one.app, 'bob')];
  const statuses: number[] = [];
  for (const app of [one.app, two.app, one.app, two.app]) {
    statuses.push((await call(app, alice, 'POST', '/messages', { receiverId: bob.id, content: 'hi' })).statusCode);
  }
  t.strictSame(statuses, [201, 201, 201, 429], 'three sends across two instances spend one budget');
});
