/**
 * What an operator runs against the service: request ids from the edge to
 * PostgreSQL, and probes that tell liveness from readiness. (SIGTERM
 * flipping /readyz in a real process: test/server.test.ts.)
 */
import { sql, type Interceptor } from 'slonik';
import t from 'tap';
import { loggerOptions } from '../src/app';
import { asUser } from '../src/db/transaction';
import { oneStatementView } from '../src/queries/views';
import { buildTestApp, call, signUp } from './helpers/app';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

t.test('X-Request-Id: taken when it is a plain token, else generated; echoed; in every error body; in the database', async (t) => {
  const values: unknown[][] = [];
  const recorder: Interceptor = {
    name: 'test/values',
    beforeQueryExecution: (_context, query) => {
      values.push([...query.values]);
      return null;
    },
  };
  const { app, pool, db } = await buildTestApp(t, { live: false, interceptors: [recorder] });
  const ann = await signUp(app, 'ann');

  const given = await call(app, ann, 'GET', '/me', undefined, { 'x-request-id': 'edge-7f3a:42' });
  t.equal(given.headers['x-request-id'], 'edge-7f3a:42', 'a plain token is kept and echoed');
  t.ok(values.some((v) => v.includes('signalbox edge-7f3a:42')), 'and set as the transaction\'s application_name');
  // The one-statement views carry it too: the conversation list, a page, the inbox.
  for (const url of ['/conversations', `/conversations/${ann.id}/messages`, '/inbox/unread', '/notifications']) {
    await call(app, ann, 'GET', url, undefined, { 'x-request-id': `view-${url.length}` });
    t.ok(values.some((v) => v.includes(`signalbox view-${url.length}`)), `${url}: its statement sets the request's application_name`);
  }
  const generated = await call(app, ann, 'GET', '/me');
  t.match(generated.headers['x-request-id'], uuid, 'none given: a UUID');
  for (const bad of ['has spaces', 'x'.repeat(129), 'semi;colon', '']) {
    const res = await call(app, ann, 'GET', '/me', undefined, { 'x-request-id': bad });
    t.match(res.headers['x-request-id'], uuid, `${JSON.stringify(bad).slice(0, 20)}: replaced`);
  }
  const failed = await call(app, ann, 'GET', '/messages/abc', undefined, { 'x-request-id': 'trace-400' });
  t.match(failed.json(), { statusCode: 400, code: 'VALIDATION_ERROR', requestId: 'trace-400' }, 'an error body names the request');
  const missing = await call(app, ann, 'GET', '/no/such/route', undefined, { 'x-request-id': 'trace-404' });
  t.match(missing.json(), { statusCode: 404, requestId: 'trace-404' });
  const unauthorized = await call(app, null, 'GET', '/me', undefined, { 'x-request-id': 'trace-401' });
  t.match(unauthorized.json(), { statusCode: 401, requestId: 'trace-401' });

  const name = await asUser(pool, db.visitorRole, ann.id, (tx) => tx.oneFirst(sql.unsafe`select current_setting('application_name') as name`), {
    requestId: 'req-9',
  });
  t.equal(name, 'signalbox req-9', 'pg_stat_activity shows the request id while the transaction runs');
  const inView = await oneStatementView(pool, { id: ann.id, role: db.visitorRole, requestId: 'req-10' }, sql.fragment`current_setting('application_name')`);
  t.equal(inView, 'signalbox req-10', 'and while a one-statement view runs (set before the view\'s function)');
  const after = await pool.oneFirst(sql.unsafe`select current_setting('application_name') as name`);
  t.not(after, 'signalbox req-10', 'and not after it: the setting ends with the statement');
});

t.test('/livez answers while the process lives; /readyz says whether to send traffic', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  t.strictSame((await app.inject({ method: 'GET', url: '/livez' })).json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.strictSame(ready.json(), { status: 'ready', reasons: [] });
  app.draining = true;
  const draining = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(draining.statusCode, 503, 'shutting down: not ready');
  t.strictSame(draining.json(), { status: 'not ready', reasons: ['shutting down'] });
  t.equal((await app.inject({ method: 'GET', url: '/livez' })).statusCode, 200, 'but alive');
});

t.test('/metrics: Prometheus text with request durations by route and status, and the service\'s own gauges', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const ann = await signUp(app, 'ann');
  await call(app, ann, 'GET', '/conversations');
  await call(app, ann, 'GET', '/conversations');
  await call(app, ann, 'GET', '/messages/999999');
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /text\/plain/);
  const text = res.body;
  t.match(text, /http_request_duration_seconds_bucket\{[^}]*route="\/conversations"[^}]*status_code="200"/, 'a histogram per route and status');
  t.match(text, /http_request_duration_seconds_count\{[^}]*route="\/messages\/:id"[^}]*status_code="404"/, 'route patterns, not URLs');
  t.notMatch(text, /http_request_summary_seconds\{/, 'histograms only: no summary repeats them per request');
  t.match(text, /signalbox_db_pool_connections\{pool="[^"]+",state="size"\} \d+/, 'the pools');
  t.match(text, /signalbox_view_cache_requests_total\{result="miss"\} 1/, 'the first view built');
  t.match(text, /signalbox_view_cache_requests_total\{result="hit"\} 1/, 'the second served from the cache');
  t.match(text, /signalbox_listen_connected -1/, 'no LISTEN connection in this app');
  t.match(text, /signalbox_password_checks\{state="queued"\} 0/);
  t.match(text, /signalbox_streams_open 0/);
  t.match(text, /process_resident_memory_bytes \d+/, 'and the process\'s own');
  const second = await buildTestApp(t, { live: false });
  t.equal((await second.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'a second app in the process has its own registry');
});

t.test('logs: JSON lines for a collector, pino-pretty in a terminal', async (t) => {
  t.strictSame(loggerOptions('info', false), { level: 'info' }, 'not a terminal: JSON');
  t.match(loggerOptions('debug', true), { level: 'debug', transport: { target: 'pino-pretty' } }, 'a terminal: readable lines');
});
