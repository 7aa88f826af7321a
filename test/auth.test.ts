import pg from 'pg';
import t from 'tap';
import { createRedisCacheClient } from '../src/cache/redis-store';
import { loadConfig } from '../src/config';
import { buildTestApp, call, send, signUp } from './helpers/app';
import { tcpProxy } from './helpers/proxy';

t.test('register', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { username: 'Alice_1', password: 'long enough pw', displayName: '  Alice  ' },
  });
  t.equal(res.statusCode, 201);
  const body = res.json();
  t.match(body.user, { username: 'alice_1', displayName: 'Alice' }, 'username lower-cased, display name trimmed');
  t.match(body.token, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit base64url token');
  t.match(res.headers['set-cookie'], /signalbox_session=.*HttpOnly.*SameSite=Strict/i, 'and an HttpOnly SameSite=Strict cookie');

  const taken = await app.inject({ method: 'POST', url: '/auth/register', payload: { username: 'ALICE_1', password: 'another password' } });
  t.equal(taken.statusCode, 409, 'usernames are unique case-insensitively');
  t.equal(taken.json().code, 'USERNAME_TAKEN');

  for (const [payload, why] of [
    [{ username: 'ab', password: 'long enough' }, 'username too short'],
    [{ username: 'a'.repeat(33), password: 'long enough' }, 'username too long'],
    [{ username: 'bad name', password: 'long enough' }, 'username with a space'],
    [{ username: 'bob', password: 'short' }, 'password too short'],
    [{ username: 'bob', password: 'x'.repeat(257) }, 'password too long'],
    [{ username: 'bob', password: 'long enough', isAdmin: true }, 'unknown field'],
    [{ username: 'bob' }, 'missing password'],
  ] as const) {
    const r = await app.inject({ method: 'POST', url: '/auth/register', payload });
    t.equal(r.statusCode, 400, why);
    t.equal(r.json().code, 'VALIDATION_ERROR', `${why}: validation code`);
    t.ok(Array.isArray(r.json().details) && r.json().details.length > 0, `${why}: details name the field`);
  }
});

t.test('login, me, logout', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: alice.username.toUpperCase(), password: 'correct horse battery' } });
  t.equal(login.statusCode, 200);
  const token = login.json().token as string;
  t.not(token, alice.token, 'each login is a new session');

  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } });
  t.equal(me.statusCode, 200);
  t.equal(me.json().id, alice.id);

  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: alice.username, password: 'wrong password' } })).statusCode, 401, 'wrong password');
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'nobody_here', password: 'whatever1' } })).statusCode, 401, 'unknown user');

  const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: { authorization: `Bearer ${token}` } });
  t.equal(out.statusCode, 204);
  t.equal((await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'a logged-out token stops working');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200, 'other sessions keep working');
});

t.test('the session cookie authenticates the browser UI', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const res = await app.inject({ method: 'GET', url: '/me', cookies: { signalbox_session: alice.token } });
  t.equal(res.statusCode, 200);
  t.equal(res.json().id, alice.id);
});

t.test('GET /auth/session says who is signed in, or null, without a 401', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const anonymous = await app.inject({ method: 'GET', url: '/auth/session' });
  t.equal(anonymous.statusCode, 200, 'signed out: 200, so the login page logs no error');
  t.strictSame(anonymous.json(), { user: null });
  const cookie = await app.inject({ method: 'GET', url: '/auth/session', cookies: { signalbox_session: alice.token } });
  t.match(cookie.json(), { user: { id: alice.id, username: alice.username, isModerator: false } }, 'the cookie\'s user');
  t.match((await call(app, alice, 'GET', '/auth/session')).json(), { user: { id: alice.id } }, 'a bearer token\'s user');
  for (const authorization of ['Bearer not-a-token', 'Basic abc', `Bearer ${alice.token.slice(0, -2)}xx`]) {
    const res = await app.inject({ method: 'GET', url: '/auth/session', headers: { authorization } });
    t.strictSame([res.statusCode, res.json()], [200, { user: null }], `${authorization.slice(0, 12)}…: null`);
  }
  await call(app, alice, 'POST', '/auth/logout');
  t.strictSame((await call(app, alice, 'GET', '/auth/session')).json(), { user: null }, 'after logout: null');
});

t.test('bad tokens answer 401', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  for (const [authorization, why] of [
    [undefined, 'no header'],
    ['Bearer', 'no token'],
    [`Basic ${Buffer.from('a:b').toString('base64')}`, 'another scheme'],
    ['Bearer abc', 'malformed token'],
    [`Bearer ${'A'.repeat(43)}`, 'unknown token'],
    [`Bearer ${alice.token} extra`, 'trailing garbage'],
  ] as const) {
    const res = await app.inject({ method: 'GET', url: '/me', headers: authorization ? { authorization } : {} });
    t.equal(res.statusCode, 401, why);
    t.equal(res.json().code, 'UNAUTHORIZED', `${why}: code`);
  }
  // An expired session.
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  await admin.query(`update app_private.sessions set created_at = now() - interval '2 days', expires_at = now() - interval '1 second'`);
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 401, 'an expired token');
});

t.test('wrong passwords are limited per address + account: a guesser elsewhere cannot lock the owner out', async (t) => {
  const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, live: false });
  const alice = await signUp(app, 'alice');
  const login = (username: string, ip: string, password = 'wrong password') =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username, password } });
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await login(alice.username, '10.0.0.1')).statusCode);
  t.strictSame(statuses, [401, 401, 401, 429], 'the fourth wrong password for one account from one address is refused');
  const refused = await login(alice.username, '10.0.0.1');
  t.equal(refused.json().code, 'RATE_LIMITED');
  t.match(refused.headers['retry-after'], /^[0-9]+$/, 'with Retry-After');
  t.equal((await login(alice.username, '10.0.0.1', 'correct horse battery')).statusCode, 429, 'even with the right password, from that address');
  t.equal((await login(alice.username, '10.7.7.7', 'correct horse battery')).statusCode, 200, 'the owner elsewhere signs in');

  // Per address, all accounts: 3× the limit.
  const fromOne: number[] = [];
  for (let i = 0; i < 10; i++) fromOne.push((await login(`nobody_${i}`, '10.9.9.9')).statusCode);
  t.strictSame(fromOne, [...Array(9).fill(401), 429], 'one address guessing across accounts is refused after 9 failures');

  // Per account, all addresses: 10× the limit, for a distributed guess.
  const bob = await signUp(app, 'bob');
  const spread: number[] = [];
  for (let i = 0; i < 31; i++) spread.push((await login(bob.username, `10.3.${i}.1`)).statusCode);
  t.strictSame(spread.slice(-2), [401, 429], 'one account guessed from 30 addresses is refused from the 31st');
});

// OWASP's device cookies. Before: no device token existed, and these
// guesses (each address under every per-address limit) locked the owner out
// of their account everywhere for a minute.
t.test('a device that signed in before is exempt from the per-account lockout, until it guesses wrong itself', async (t) => {
  const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, live: false });
  const alice = await signUp(app, 'alice');
  const login = (ip: string, password: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, headers, payload: { username: alice.username, password } });

  const first = await login('10.0.0.1', 'correct horse battery');
  t.equal(first.statusCode, 200);
  const { deviceToken } = first.json();
  t.match(deviceToken, /^[A-Za-z0-9_-]{43}$/, 'a login answers a device token');
  const cookie = first.cookies.find((c) => c.name === 'signalbox_device');
  t.match(cookie, { value: deviceToken, path: '/auth', httpOnly: true, sameSite: 'Strict' }, 'and sets it as an HttpOnly cookie for /auth');

  // 16 addresses × 2 wrong passwords: under the per-address limit (3), over
  // the per-account one (10 × 3 = 30).
  const statuses: number[] = [];
  for (let a = 0; a < 16; a++) for (let i = 0; i < 2; i++) statuses.push((await login(`10.4.${a}.1`, 'wrong password')).statusCode);
  t.strictSame(statuses.slice(-2), [429, 429], 'the distributed guess runs into the per-account lockout');
  t.equal(statuses.filter((s) => s === 401).length, 29, 'after exactly 29 guesses (the budget counts attempts: the first login was one of the 30)');

  t.equal((await login('10.99.0.1', 'correct horse battery')).statusCode, 429, 'a new device is locked out with the guessers (OWASP\'s trade-off)');
  const trusted = await login('10.99.0.1', 'correct horse battery', { 'x-signalbox-device': deviceToken });
  t.equal(trusted.statusCode, 200, 'the owner\'s device signs in from a fresh address (header)');
  t.equal(trusted.json().deviceToken, deviceToken, 'and keeps its token');
  const byCookie = await login('10.99.0.2', 'correct horse battery', { cookie: `signalbox_device=${deviceToken}` });
  t.equal(byCookie.statusCode, 200, 'a browser presents it as the cookie');

  // The device's own budget: three wrong passwords, then it is judged as a
  // stranger, and strangers are locked out of this account.
  for (let i = 0; i < 3; i++) t.equal((await login('10.99.0.1', 'wrong password', { 'x-signalbox-device': deviceToken })).statusCode, 401);
  t.equal((await login('10.99.0.1', 'correct horse battery', { 'x-signalbox-device': deviceToken })).statusCode, 429, 'a device that guesses loses its trust');

  const bob = await signUp(app, 'bob');
  const other = await app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress: '10.99.0.3',
    headers: { 'x-signalbox-device': deviceToken },
    payload: { username: bob.username, password: 'wrong password' },
  });
  t.equal(other.statusCode, 401, "another account's device token is no trust here (judged as a stranger: admitted, counted)");
});

t.test('concurrent guesses cannot overshoot the per-account budget', async (t) => {
  // Before: the budget was checked before the guess and counted after it,
  // so concurrent guesses all passed the check (105 of a budget of 100).
  const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3', ARGON2_MAX_QUEUED: '1000' }, live: false });
  const alice = await signUp(app, 'alice');
  const results = await Promise.all(
    Array.from({ length: 45 }, (_, i) =>
      app.inject({ method: 'POST', url: '/auth/login', remoteAddress: `10.6.${i}.1`, payload: { username: alice.username, password: 'wrong password' } }),
    ),
  );
  const count = (status: number) => results.filter((r) => r.statusCode === status).length;
  t.equal(count(401), 30, 'exactly the budget (10 × 3) was checked');
  t.equal(count(429), 15, 'the rest refused without hashing');
});

t.test('a login flood from 300 addresses leaves room for the owners\' devices', async (t) => {
  // Before: 16,748 × 503 PASSWORD_CHECKS_BUSY and the owner's logins failed
  // 35 times in 37. Default concurrency and queue.
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const first = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: alice.username, password: 'correct horse battery' } });
  const deviceToken = first.json().deviceToken as string;
  const flood = Array.from({ length: 300 }, (_, i) =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: `10.7.${i % 250}.${1 + Math.floor(i / 250)}`, payload: { username: `made_up_${i}`, password: 'guess' } }),
  );
  const owner = Array.from({ length: 20 }, (_, i) =>
    app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: `10.8.0.${i + 1}`,
      headers: { 'x-signalbox-device': deviceToken },
      payload: { username: alice.username, password: 'correct horse battery' },
    }),
  );
  const [strangers, owners] = await Promise.all([Promise.all(flood), Promise.all(owner)]);
  t.ok(strangers.filter((r) => r.statusCode === 503).length > 200, 'the flood is mostly turned away');
  t.strictSame(owners.map((r) => r.statusCode), Array(20).fill(200), 'every one of the owner\'s logins succeeds');
});

t.test('DELETE /me has a password budget: a flood is refused without hashing', async (t) => {
  const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, live: false });
  const alice = await signUp(app, 'alice');
  const before = app.passwords.computed;
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await call(app, alice, 'DELETE', '/me', { password: `guess ${i}` })).statusCode);
  t.strictSame(statuses.slice(0, 4), [403, 403, 403, 429], 'three wrong passwords, then 429');
  t.ok(statuses.slice(3).every((s) => s === 429), 'and the rest of the flood too');
  t.equal(app.passwords.computed - before, 3, 'only the three admitted checks ran argon2');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200, 'the account is still there');
});

t.test('argon2 work is bounded: excess checks answer 503 with Retry-After at once', async (t) => {
  const { app } = await buildTestApp(t, { env: { ARGON2_MAX_CONCURRENT: '1', ARGON2_MAX_QUEUED: '1', LOGIN_RATE_LIMIT: '1000' }, live: false });
  const alice = await signUp(app, 'alice');
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      app.inject({ method: 'POST', url: '/auth/login', remoteAddress: `10.5.0.${i}`, payload: { username: alice.username, password: 'wrong password' } }),
    ),
  );
  const statuses = results.map((r) => r.statusCode).sort();
  t.ok(statuses.filter((s) => s === 401).length >= 2, 'one runs and one waits');
  const busy = results.filter((r) => r.statusCode === 503);
  t.ok(busy.length >= 1, `the rest are turned away (${statuses.join(', ')})`);
  t.equal(busy[0]!.json().code, 'PASSWORD_CHECKS_BUSY');
  t.equal(busy[0]!.headers['retry-after'], '1');
});

t.test('with Redis the budgets are shared by every instance', async (t) => {
  const clients = [createRedisCacheClient('redis://127.0.0.1:6379'), createRedisCacheClient('redis://127.0.0.1:6379')];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const one = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, cacheClient: clients[0], live: false });
  const two = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, cacheClient: clients[1], shareWith: one, live: false });
  const alice = await signUp(one.app, 'alice');
  const login = (app: typeof one.app) =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.8.8.8', payload: { username: alice.username, password: 'wrong password' } });
  const statuses = [(await login(one.app)).statusCode, (await login(two.app)).statusCode, (await login(one.app)).statusCode, (await login(two.app)).statusCode];
  t.strictSame(statuses, [401, 401, 401, 429], 'three failures across two instances spend one budget');
});

t.test('sign-ups are rate-limited per address', async (t) => {
  const { app } = await buildTestApp(t, { env: { REGISTER_RATE_LIMIT: '2' }, live: false });
  const attempt = (username: string, ip: string) =>
    app.inject({ method: 'POST', url: '/auth/register', remoteAddress: ip, payload: { username, password: 'long enough pw' } });
  const statuses = [];
  for (const name of ['reg_a', 'reg_b', 'reg_c']) statuses.push((await attempt(name, '10.1.1.1')).statusCode);
  t.strictSame(statuses, [201, 201, 429], 'the third sign-up from one address within a minute is refused');
  t.equal((await attempt('reg_d', '10.1.1.2')).statusCode, 201, 'another address may still sign up');
  t.equal((await attempt('reg_c', '10.1.1.3')).statusCode, 201, 'the refused sign-up wrote nothing');
});

t.test('DELETE /me', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const m = await send(app, alice, { receiverId: bob.id, content: 'hello bob' });
  await send(app, bob, { parentMessageId: m.id, content: 'hi alice' });
  t.equal((await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: 'hello bob!' })).statusCode, 200);

  const wrong = await call(app, alice, 'DELETE', '/me', { password: 'not my password' });
  t.equal(wrong.statusCode, 403, 'a wrong password is refused');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200, 'and the account is still there');
  t.equal((await call(app, alice, 'DELETE', '/me', {})).statusCode, 400, 'the password is required');

  const gone = await call(app, alice, 'DELETE', '/me', { password: 'correct horse battery' });
  t.equal(gone.statusCode, 204);
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 401, 'the deleted user\'s token stops working at once');
  t.equal((await call(app, bob, 'GET', `/messages/${m.id}`)).statusCode, 404, 'their messages are gone for the other participant');
  t.equal((await call(app, bob, 'GET', `/users/${alice.username}`)).statusCode, 404, 'the username no longer resolves');
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: alice.username, password: 'correct horse battery' } });
  t.equal(login.statusCode, 401, 'and cannot log in');

  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  const { rows } = await admin.query(
    `select (select count(*) from app_public.messages)::int as messages,
            (select count(*) from app_public.notifications)::int as notifications,
            (select count(*) from app_public.message_history)::int as history,
            (select count(*) from app_private.sessions where user_id = $1)::int as sessions,
            (select count(*) from app_private.deleted_accounts where former_user_id = $1 and self_service)::int as audit`,
    [alice.id],
  );
  t.strictSame(rows[0], { messages: 0, notifications: 0, history: 0, sessions: 0, audit: 1 }, 'nothing of the account is left, one self-service audit row');
});

t.test('GET /users/:username', async (t) => {
  const { app } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const res = await call(app, bob, 'GET', `/users/${alice.username.toUpperCase()}`);
  t.equal(res.statusCode, 200);
  t.strictSame(Object.keys(res.json()).sort(), ['createdAt', 'displayName', 'id', 'username'], 'no private fields');
  t.equal((await call(app, bob, 'GET', '/users/nobody_at_all')).statusCode, 404);
  t.equal((await call(app, bob, 'GET', '/users/x')).statusCode, 400, 'an impossible username is a 400');
  t.equal((await call(app, null, 'GET', `/users/${alice.username}`)).statusCode, 401);
});

t.test('TRUST_PROXY: the client address and protocol come from the trusted proxy, and only then', async (t) => {
  for (const trusted of [true, false]) {
    const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '1', ...(trusted ? { TRUST_PROXY: '127.0.0.1' } : {}) }, live: false });
    const alice = await signUp(app, 'alice');
    const login = (forwardedFor: string, password = 'wrong password') =>
      app.inject({
        method: 'POST',
        url: '/auth/login',
        headers: { 'x-forwarded-for': forwardedFor, 'x-forwarded-proto': 'https' },
        payload: { username: alice.username, password },
      });
    t.equal((await login('203.0.113.1')).statusCode, 401);
    if (trusted) t.throws(() => loadConfig({ TRUST_PROXY: '1' }), /hop count/, 'a hop count is refused at start-up');
    t.equal((await login('203.0.113.1')).statusCode, 429, `${trusted ? 'trusted' : 'untrusted'}: the same client is limited`);
    const elsewhere = await login('203.0.113.2', 'correct horse battery');
    if (trusted) {
      t.equal(elsewhere.statusCode, 200, 'trusted: another forwarded address is another client');
      t.match(String(elsewhere.headers['set-cookie']), /; Secure/, 'and X-Forwarded-Proto https makes the cookie Secure');
    } else {
      t.equal(elsewhere.statusCode, 429, 'untrusted: X-Forwarded-For is ignored (one address: the socket\'s)');
    }
  }
});

t.test('with Redis away the password budgets still hold, counted per instance', async (t) => {
  const proxy = await tcpProxy(t, 6379);
  const client = createRedisCacheClient(`redis://127.0.0.1:${proxy.port}`);
  t.teardown(() => client.close());
  const { app } = await buildTestApp(t, { env: { LOGIN_RATE_LIMIT: '3' }, cacheClient: client, live: false });
  const alice = await signUp(app, 'alice');
  await proxy.cut();
  const login = () =>
    app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '10.9.9.9', payload: { username: alice.username, password: 'wrong password' } });
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await login()).statusCode);
  t.strictSame(statuses, [401, 401, 401, 429, 429, 429], 'three failures spend the budget while Redis is away (before: every guess was checked)');
});
