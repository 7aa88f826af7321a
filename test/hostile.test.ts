/**
 * Hostile input: every malformed body, parameter and header gets a clear
 * 4xx with the API's error shape, and nothing is written.
 */
import pg from 'pg';
import t from 'tap';
import { buildTestApp, send, signUp } from './helpers/app';

type Case = {
  why: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  payload?: string;
  contentType?: string;
  status: number;
  code?: string;
};

t.test('hostile input', async (t) => {
  const { app, db } = await buildTestApp(t);
  const alice = await signUp(app, 'alice');
  const bob = await signUp(app, 'bob');
  const m = await send(app, alice, { receiverId: bob.id, content: 'original' });
  const json = (v: unknown) => JSON.stringify(v);

  const cases: Case[] = [
    { why: 'malformed JSON', method: 'POST', url: '/messages', payload: '{"content": "hi", ', status: 400 },
    { why: 'JSON that is not an object', method: 'POST', url: '/messages', payload: '"hello"', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'empty body', method: 'POST', url: '/messages', payload: '', status: 400 },
    { why: 'content of the wrong type', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: 42 }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'empty content', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: '' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'whitespace-only content', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: ' \n\t ' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'content over 10,000 characters', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: 'x'.repeat(10_001) }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a NUL character', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: 'a\u0000b' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'an unknown field', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: 'hi', senderId: bob.id }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a prototype-pollution key', method: 'POST', url: '/messages', payload: '{"receiverId": 2, "content": "hi", "__proto__": {"admin": true}}', status: 400 },
    { why: 'receiverId as a string', method: 'POST', url: '/messages', payload: json({ receiverId: String(bob.id), content: 'hi' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'receiverId not an integer', method: 'POST', url: '/messages', payload: json({ receiverId: 1.5, content: 'hi' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'negative receiverId', method: 'POST', url: '/messages', payload: json({ receiverId: -1, content: 'hi' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'huge receiverId', method: 'POST', url: '/messages', payload: '{"receiverId": 1e300, "content": "hi"}', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'receiverId null', method: 'POST', url: '/messages', payload: json({ receiverId: null, content: 'hi' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a body over the limit', method: 'POST', url: '/messages', payload: json({ receiverId: bob.id, content: 'x'.repeat(70_000) }), status: 413 },
    { why: 'a non-JSON media type', method: 'POST', url: '/messages', payload: 'content=hi', contentType: 'application/x-www-form-urlencoded', status: 415 },
    { why: 'a text/plain body', method: 'POST', url: '/messages', payload: 'hello', contentType: 'text/plain', status: 415 },
    { why: 'edit with null content', method: 'PATCH', url: `/messages/${m.id}`, payload: json({ content: null }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'edit with an extra field', method: 'PATCH', url: `/messages/${m.id}`, payload: json({ content: 'x', read: true }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'edit with a NUL', method: 'PATCH', url: `/messages/${m.id}`, payload: json({ content: '\u0000' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a non-numeric id', method: 'GET', url: '/messages/abc', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'id zero', method: 'GET', url: '/messages/0', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a negative id', method: 'GET', url: '/messages/-1', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a fractional id', method: 'GET', url: '/messages/1.5', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'an exponent id', method: 'GET', url: '/messages/1e3', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'an id beyond int8', method: 'GET', url: '/messages/99999999999999999999', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'SQL in an id', method: 'GET', url: `/messages/${m.id}%20or%201=1`, status: 400, code: 'VALIDATION_ERROR' },
    { why: 'SQL in an id (semicolon)', method: 'POST', url: `/messages/${m.id};drop%20table%20app_public.users/read`, status: 400 },
    { why: 'limit 0', method: 'GET', url: '/inbox/unread?limit=0', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'limit 101', method: 'GET', url: '/inbox/unread?limit=101', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'negative limit', method: 'GET', url: '/inbox/unread?limit=-5', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'huge limit', method: 'GET', url: '/notifications?limit=99999999999', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a non-numeric cursor', method: 'GET', url: '/conversations?before=abc', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'an unknown query parameter', method: 'GET', url: '/inbox/unread?admin=1', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a bad unread filter', method: 'GET', url: '/notifications?unread=yes', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a non-numeric partner', method: 'GET', url: '/conversations/bob/messages', status: 400, code: 'VALIDATION_ERROR' },
    { why: 'SQL in a username', method: 'GET', url: `/users/${encodeURIComponent("x' or '1'='1")}`, status: 400, code: 'VALIDATION_ERROR' },
    { why: 'SQL in a login username', method: 'POST', url: '/auth/login', payload: json({ username: "admin'--", password: 'whatever1' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a NUL in a password', method: 'POST', url: '/auth/register', payload: json({ username: 'mallory', password: 'pass\u0000word' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a NUL in a display name', method: 'POST', url: '/auth/register', payload: json({ username: 'mallory', password: 'password1', displayName: 'M\u0000' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'a username with a NUL', method: 'POST', url: '/auth/register', payload: json({ username: 'mal\u0000lory', password: 'password1' }), status: 400, code: 'VALIDATION_ERROR' },
    { why: 'DELETE /me with a wrong-typed password', method: 'DELETE', url: '/me', payload: json({ password: 12345678 }), status: 400, code: 'VALIDATION_ERROR' },
  ];

  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  const snapshot = async () =>
    (
      await admin.query(`select (select count(*) from app_public.users)::int as users,
                                (select count(*) from app_public.messages)::int as messages,
                                (select count(*) from app_public.notifications)::int as notifications,
                                (select count(*) from app_public.message_history)::int as history,
                                (select string_agg(content, '|' order by id) from app_public.messages) as contents`)
    ).rows[0];
  const before = await snapshot();

  for (const c of cases) {
    const res = await app.inject({
      method: c.method,
      url: c.url,
      headers: {
        authorization: `Bearer ${alice.token}`,
        ...(c.payload !== undefined ? { 'content-type': c.contentType ?? 'application/json' } : {}),
      },
      ...(c.payload !== undefined ? { payload: c.payload } : {}),
    });
    t.equal(res.statusCode, c.status, c.why);
    const body = res.json();
    t.match(body, { statusCode: c.status, error: String, message: String, code: String }, `${c.why}: the error shape`);
    if (c.code) t.equal(body.code, c.code, `${c.why}: code ${c.code}`);
  }
  t.strictSame(await snapshot(), before, 'nothing was written by any hostile request');

  // SQL in content is just text: stored verbatim, nothing executed.
  const injection = "'); delete from app_public.users; --";
  const stored = await send(app, alice, { receiverId: bob.id, content: injection });
  t.equal(stored.content, injection, 'SQL in content is stored as text');
  t.equal((await snapshot()).users, before.users, 'and executed nothing');
});
