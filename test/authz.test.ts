/**
 * Authorization matrix: every route that takes an object, called by its
 * owner, by the other participant, by a stranger and without a token.
 * Strangers get 404 (no probing by id) and never see content or counts.
 */
import t from 'tap';
import { buildTestApp, call, send, signUp, type Session } from './helpers/app';

t.test('authorization matrix', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await signUp(app, 'owner');
  const other = await signUp(app, 'other');
  const stranger = await signUp(app, 'stranger');
  const SECRET = 'the secret only owner and other may read';
  const m = await send(app, owner, { receiverId: other.id, content: SECRET });
  await call(app, owner, 'PATCH', `/messages/${m.id}`, { content: `${SECRET} (edited)` });
  const notification = (await call(app, other, 'GET', '/notifications')).json().notifications[0].id as number;

  type Row = { route: string; method: 'GET' | 'POST' | 'PATCH'; url: string; body?: unknown; owner: number; other: number; stranger: number };
  const rows: Row[] = [
    { route: 'get message', method: 'GET', url: `/messages/${m.id}`, owner: 200, other: 200, stranger: 404 },
    { route: 'history', method: 'GET', url: `/messages/${m.id}/history`, owner: 200, other: 200, stranger: 404 },
    { route: 'thread', method: 'GET', url: `/messages/${m.id}/thread`, owner: 200, other: 200, stranger: 404 },
    { route: 'edit', method: 'PATCH', url: `/messages/${m.id}`, body: { content: `${SECRET} (edited again)` }, owner: 200, other: 403, stranger: 404 },
    { route: 'reply', method: 'POST', url: '/messages', body: { parentMessageId: m.id, content: 'a reply' }, owner: 201, other: 201, stranger: 404 },
    { route: 'mark read', method: 'POST', url: `/messages/${m.id}/read`, owner: 403, other: 204, stranger: 404 },
    { route: 'notification read', method: 'POST', url: `/notifications/${notification}/read`, owner: 404, other: 204, stranger: 404 },
  ];
  const callers: [keyof Pick<Row, 'owner' | 'other' | 'stranger'>, Session][] = [
    ['owner', owner],
    ['other', other],
    ['stranger', stranger],
  ];
  for (const row of rows) {
    for (const [role, session] of callers) {
      const res = await call(app, session, row.method, row.url, row.body);
      t.equal(res.statusCode, row[role], `${row.route} as ${role}`);
      if (role === 'stranger') t.notOk(res.body.includes(SECRET), `${row.route}: the stranger receives no content`);
    }
    const anonymous = await call(app, null, row.method, row.url, row.body);
    t.equal(anonymous.statusCode, 401, `${row.route} without a token`);
  }

  // Lists: the stranger's views hold nothing of the owner/other conversation.
  for (const url of ['/conversations', `/conversations/${owner.id}/messages`, `/conversations/${other.id}/messages`, '/inbox/unread', '/notifications']) {
    const res = await call(app, stranger, 'GET', url);
    t.equal(res.statusCode, 200, `${url} as stranger`);
    t.notOk(res.body.includes(SECRET), `${url}: no content of others`);
    const body = res.json();
    const items = body.conversations ?? body.messages ?? body.notifications;
    t.strictSame(items, [], `${url}: empty for the stranger`);
    if ('unreadCount' in body) t.equal(body.unreadCount, 0, `${url}: no one else's counts`);
    t.equal((await call(app, null, 'GET', url)).statusCode, 401, `${url} without a token`);
  }

  // Conversation actions need a token; a stranger marking "read" touches nothing of others.
  t.equal((await call(app, null, 'POST', `/conversations/${owner.id}/read`)).statusCode, 401);
  t.equal((await call(app, stranger, 'POST', `/conversations/${owner.id}/read`)).statusCode, 204, 'marking one\'s own (empty) conversation read is fine');
  const still = (await call(app, other, 'GET', '/inbox/unread')).json();
  t.equal(still.messages.length, 1, 'and did not read the reply the owner sent to other');

  for (const [method, url] of [['GET', '/me'], ['DELETE', '/me'], ['POST', '/auth/logout'], ['POST', '/notifications/read-all'], ['POST', '/messages']] as const) {
    t.equal((await call(app, null, method, url, method === 'GET' ? undefined : {})).statusCode, 401, `${method} ${url} without a token`);
  }
});
