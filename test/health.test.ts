import t from 'tap';
import pg from 'pg';
import { buildTestApp } from './helpers/app';

t.test('GET /healthz answers 200 when the database answers', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 200);
  t.strictSame(res.json(), {
    status: 'ok', database: 'ok', cache: 'memory', events: 'listening', replicas: [],
    pools: [{ name: 'primary', size: 5, inUse: 0, waiting: 0 }], // the test pool's own size
  });
});

t.test('GET /healthz answers 503 when the database is unreachable', async (t) => {
  const { app, db } = await buildTestApp(t);
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'healthy first');
  // Take the database away under the running app: refuse new connections
  // and end the pool's existing ones.
  const admin = new pg.Client({ connectionString: db.serverUrl });
  await admin.connect();
  t.teardown(() => admin.end());
  await admin.query(`alter database ${db.name} allow_connections false`);
  await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [db.name]);
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(res.statusCode, 503);
  t.match(res.json(), { status: 'degraded', database: 'unreachable' });
  await admin.query(`alter database ${db.name} allow_connections true`);
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'healthy again once it is back');
});

t.test('unknown routes answer the API error shape', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/nope' });
  t.equal(res.statusCode, 404);
  t.match(res.json(), { statusCode: 404, error: 'Not Found', code: 'NOT_FOUND' });
});

t.test('the OpenAPI document lists every route of the contract', async (t) => {
  const { app } = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(res.statusCode, 200);
  const paths = Object.keys(res.json().paths);
  for (const p of [
    '/auth/register', '/auth/login', '/auth/logout', '/me', '/users/{username}', '/messages',
    '/messages/{id}', '/messages/{id}/history', '/messages/{id}/thread', '/messages/{id}/read',
    '/inbox/unread', '/conversations', '/conversations/{userId}/messages', '/conversations/{userId}/read',
    '/notifications', '/notifications/{id}/read', '/notifications/read-all', '/healthz',
  ]) {
    t.ok(paths.includes(p), `${p} is documented`);
  }
  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200, '/docs serves the Swagger UI');
});
