import http from 'node:http';
import t from 'tap';
import { buildTestApp, call, listen, send, signUp } from './helpers/app';

/** GET with the path exactly as given (no client-side normalisation). */
function rawGet(base: string, rawPath: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the HTML is never cached, the assets are immutable, headers are strict', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const page = await app.inject({ method: 'GET', url: '/' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['cache-control'], /no-cache/);
  t.match(page.headers['cache-control'], /no-store/);
  const csp = String(page.headers['content-security-policy']);
  t.match(csp, /script-src 'self'(;|$)/, 'scripts only from the app itself');
  t.notMatch(csp, /unsafe-inline/, 'no inline script or style');
  t.match(csp, /frame-ancestors 'none'/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  const script = /src="(\/assets\/[0-9a-f]{12}\/app\.js)"/.exec(page.body)?.[1];
  const style = /href="(\/assets\/[0-9a-f]{12}\/style\.css)"/.exec(page.body)?.[1];
  t.ok(script && style, 'asset URLs carry a content hash of the whole set');
  const modules = ['api.js', 'dom.js', 'live.js', 'session.js', 'state.js', 'views.js'].map((f) => script!.replace('app.js', f));
  for (const url of [script!, style!, ...modules]) {
    const asset = await app.inject({ method: 'GET', url });
    t.equal(asset.statusCode, 200, url);
    t.match(asset.headers['cache-control'], /max-age=31536000/, `${url}: cached for a year`);
    t.match(asset.headers['cache-control'], /immutable/, `${url}: immutable`);
  }
  // app.inject normalises `..` before routing; a real socket sends the raw
  // path, so the traversal reaches @fastify/static as an attacker's would.
  const base = await listen(app);
  const dir = script!.replace('app.js', '');
  for (const raw of ['/assets/../../package.json', `${dir}../../../package.json`, `${dir}..%2f..%2f..%2fpackage.json`, `${dir}%2e%2e/%2e%2e/%2e%2e/package.json`, `${dir}....//....//package.json`]) {
    const res = await rawGet(base, raw);
    t.not(res.status, 200, `${raw}: refused (${res.status})`);
    t.notMatch(res.body, /"name": "signalbox"/, `${raw}: package.json never served`);
  }
  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200, 'the API docs still load under their own CSP');
  const docsCsp = String(docs.headers['content-security-policy']);
  t.notMatch(docsCsp, /script-src[^;]*unsafe/, 'the docs\' scripts stay as strict as before');
  t.match(docsCsp, /style-src 'self' 'unsafe-inline';/, 'their run-time styles may be inline (the browser test watches the console)');
  const pageCsp = String((await app.inject({ method: 'GET', url: '/' })).headers['content-security-policy']);
  t.notMatch(pageCsp, /unsafe-inline/, 'the client\'s own page allows nothing inline');
});

t.test('cookie sessions: writes need the client header (CSRF defence)', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const cookies = { signalbox_session: alice.token };
  const forged = await app.inject({ method: 'POST', url: '/messages', cookies, payload: { receiverId: bob.id, content: 'forged' } });
  t.equal(forged.statusCode, 403, 'a cookie-only write is refused');
  t.equal(forged.json().code, 'CSRF');
  const fromUi = await app.inject({ method: 'POST', url: '/messages', cookies, headers: { 'x-signalbox-client': 'web' }, payload: { receiverId: bob.id, content: 'from the UI' } });
  t.equal(fromUi.statusCode, 201, 'the web client\'s write works');
  t.equal((await app.inject({ method: 'GET', url: '/me', cookies })).statusCode, 200, 'reads need no header');
  await send(app, bob, { receiverId: alice.id, content: 'bearer writes need no header' });
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', cookies, headers: { 'x-signalbox-client': 'web' } });
  t.equal(logout.statusCode, 204);
  t.match(String(logout.headers['set-cookie']), /signalbox_session=;/, 'logout clears the cookie');
  t.equal((await call(app, alice, 'GET', '/me')).statusCode, 401, 'and revokes the session');
});
