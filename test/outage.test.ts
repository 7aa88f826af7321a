/**
 * The database away: every request that needs it answers 503
 * DATABASE_UNAVAILABLE with Retry-After (never a 500 INTERNAL), and the
 * service recovers by itself when the database is back.
 */
import t from 'tap';
import { adminQuery } from '../src/db/admin';
import { buildTestApp, call, signUp } from './helpers/app';

t.test('database unreachable: 503 DATABASE_UNAVAILABLE, then recovery', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 200);
  // Superusers ignore CONNECTION LIMIT; ALLOW_CONNECTIONS false does not.
  await adminQuery(
    db.serverUrl,
    `alter database ${db.name} allow_connections false`,
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${db.name}' and pid <> pg_backend_pid()`,
  );
  t.teardown(() => adminQuery(db.serverUrl, `alter database ${db.name} allow_connections true`));

  const answers = [];
  for (const [method, url] of [['GET', '/me'], ['GET', '/conversations'], ['POST', '/messages'], ['GET', '/inbox/unread']] as const) {
    const res = await call(app, alice, method, url, method === 'POST' ? { receiverId: alice.id, content: 'x' } : undefined);
    answers.push(res);
    t.equal(res.statusCode, 503, `${method} ${url}: 503`);
    t.equal(res.json().code, 'DATABASE_UNAVAILABLE', `${method} ${url}: DATABASE_UNAVAILABLE`);
    t.equal(res.headers['retry-after'], '5', `${method} ${url}: Retry-After`);
  }
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: alice.username, password: 'correct horse battery' } });
  t.equal(login.statusCode, 503, 'login: 503, not a wrong-password 401');
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 503, '/healthz says so');

  await adminQuery(db.serverUrl, `alter database ${db.name} allow_connections true`);
  let recovered = 0;
  for (let i = 0; i < 50 && recovered !== 200; i++) {
    recovered = (await call(app, alice, 'GET', '/me')).statusCode;
    if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(recovered, 200, 'the service recovers by itself');
});
