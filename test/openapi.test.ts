/**
 * /openapi.json describes the service exactly: a valid OpenAPI document
 * (checked with @apidevtools/swagger-parser), public routes without a
 * lock, the stream as text/event-stream, no body on 204/304, the shared
 * errors on every route, cookie authentication as a scheme; and every
 * error a battery of real requests produced is listed, status and code, on
 * the route that produced it.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildTestApp, call, send, signUp } from './helpers/app';

type Operation = { security?: unknown[]; responses: Record<string, { description?: string; content?: Record<string, { schema?: { properties?: { code?: { enum?: string[] } } } }> }> };
type Document = { paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

async function documentOf(app: FastifyInstance): Promise<Document> {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  return res.json() as Document;
}

t.test('the document is valid and says what the service does', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const doc = await documentOf(app);
  await t.resolves(SwaggerParser.validate(structuredClone(doc) as never), 'a valid OpenAPI document');
  t.strictSame(doc.paths['/healthz']!.get!.security, [], '/healthz is public (no lock)');
  t.strictSame(doc.paths['/auth/login']!.post!.security, [], 'so is login');
  t.ok(doc.components.securitySchemes.cookie, 'cookie authentication is a security scheme');
  const stream = doc.paths['/notifications/stream']!.get!.responses['200']!;
  t.strictSame(Object.keys(stream.content ?? {}), ['text/event-stream'], 'the stream is text/event-stream');
  t.strictSame(doc.paths['/conversations']!.get!.responses['304'], { description: doc.paths['/conversations']!.get!.responses['304']!.description }, '304 has no body');
  t.notOk(doc.paths['/messages/{id}/read']!.post!.responses['204']!.content, '204 has no body');
  const send = doc.paths['/messages']!.post!.responses;
  for (const status of ['400', '401', '403', '413', '415', '503']) t.ok(send[status], `POST /messages documents ${status}`);
  t.strictSame(send['403']!.content!['application/json']!.schema!.properties!.code!.enum!.includes('CSRF'), true, 'the CSRF 403 is listed');
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (!response.description || response.description === 'Default Response') t.fail(`${method} ${path} ${status} has no description`);
      }
    }
  }
});

t.test('every error real requests produce is listed on its route', async (t) => {
  const { app } = await buildTestApp(t, { live: false, env: { BODY_LIMIT_BYTES: '2048', LOGIN_RATE_LIMIT: '2' } });
  const seen: { method: string; route: string; status: number; code: string }[] = [];
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'string' && request.routeOptions.url) {
      const code = (JSON.parse(payload) as { code?: string }).code ?? '';
      seen.push({ method: request.method.toLowerCase(), route: request.routeOptions.url.replace(/:(\w+)/g, '{$1}'), status: reply.statusCode, code });
    }
  });
  const [alice, bob, carol] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol')];
  const m = await send(app, alice, { receiverId: bob.id, content: 'hello' });
  const big = 'x'.repeat(4000);
  const requests: [Parameters<typeof call>[1], Parameters<typeof call>[2], string, unknown?, Record<string, string>?][] = [
    [null, 'GET', '/me'],
    [null, 'POST', '/messages', { receiverId: 1, content: 'x' }],
    [alice, 'GET', '/messages/abc'],
    [alice, 'GET', '/messages/999999'],
    [carol, 'GET', `/messages/${m.id}`],
    [bob, 'PATCH', `/messages/${m.id}`, { content: 'not mine' }],
    [alice, 'POST', `/messages/${m.id}/read`],
    [alice, 'POST', '/messages', { receiverId: bob.id }],
    [alice, 'POST', '/messages', { receiverId: 999999, content: 'nobody' }],
    [carol, 'POST', '/messages', { parentMessageId: m.id, content: 'not my thread' }],
    [alice, 'POST', '/messages', { receiverId: carol.id, parentMessageId: m.id, content: 'wrong receiver' }],
    [alice, 'POST', '/messages', { receiverId: bob.id, content: big }],
    [alice, 'POST', '/messages', 'plain text', { 'content-type': 'text/plain' }],
    [alice, 'POST', '/messages', '{"broken', { 'content-type': 'application/json' }],
    [alice, 'POST', '/messages', { receiverId: bob.id, content: 'a' }, { 'idempotency-key': 'k1' }],
    [alice, 'POST', '/messages', { receiverId: bob.id, content: 'b' }, { 'idempotency-key': 'k1' }],
    [alice, 'GET', `/messages/${m.id}/thread?after=999999`],
    [alice, 'GET', '/conversations/999999/messages'],
    [alice, 'GET', '/inbox/unread?limit=0'],
    [alice, 'POST', '/notifications/999999/read'],
    [alice, 'GET', '/users/zz'],
    [alice, 'GET', '/users/nobody_here'],
    [alice, 'DELETE', '/me', { password: 'wrong password 1' }],
    [alice, 'DELETE', '/me', { password: 'wrong password 2' }],
    [alice, 'DELETE', '/me', { password: 'wrong password 3' }],
    [null, 'POST', '/auth/register', { username: alice.username, password: 'long enough pw' }],
    [null, 'POST', '/auth/register', { username: 'x', password: 'short' }],
    [null, 'POST', '/auth/login', { username: bob.username, password: 'wrong password' }],
    [null, 'POST', '/auth/login', { username: bob.username, password: 'wrong password' }],
    [null, 'POST', '/auth/login', { username: bob.username, password: 'wrong password' }],
  ];
  for (const [who, method, url, payload, headers] of requests) {
    if (typeof payload === 'string') {
      await app.inject({ method, url, payload, headers: { authorization: `Bearer ${who!.token}`, ...headers } });
    } else {
      await call(app, who, method, url, payload, headers);
    }
  }
  await app.inject({ method: 'POST', url: '/messages', cookies: { signalbox_session: alice.token }, payload: { receiverId: bob.id, content: 'csrf' } });

  const doc = await documentOf(app);
  const statuses = new Set(seen.map((s) => s.status));
  for (const expected of [400, 401, 403, 404, 409, 413, 415, 422, 429]) t.ok(statuses.has(expected), `the battery produced a ${expected}`);
  for (const { method, route, status, code } of seen) {
    const response = doc.paths[route]?.[method]?.responses[String(status)];
    const codes = response?.content?.['application/json']?.schema?.properties?.code?.enum ?? [];
    t.ok(codes.includes(code), `${method.toUpperCase()} ${route} documents ${status} ${code}`);
  }
});
