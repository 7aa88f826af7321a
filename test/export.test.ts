/**
 * GET /me/export: everything of the caller's and nothing of anyone else's,
 * from one snapshot, streamed (src/queries/export.ts).
 */
import http from 'node:http';
import t from 'tap';
import { buildTestApp, call, listen, send, signUp, type Session } from './helpers/app';
import { adminClient } from './helpers/db';

type Line = { type: string; [key: string]: any };
const parse = (body: string): Line[] => body.trimEnd().split('\n').map((l) => JSON.parse(l) as Line);

/** A GET whose body is read only when the test says so (the server meets backpressure meanwhile). */
function pausedGet(base: string, who: Session, path: string) {
  return new Promise<{ res: http.IncomingMessage; rest: () => Promise<string> }>((resolve, reject) => {
    const req = http.get(`${base}${path}`, { headers: { authorization: `Bearer ${who.token}` } }, (res) => {
      res.pause();
      resolve({
        res,
        rest: () =>
          new Promise<string>((done, fail) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => done(text));
            res.on('error', fail);
            res.resume();
          }),
      });
    });
    req.on('error', reject);
  });
}

t.test('the export holds everything of the caller\'s and nothing of anyone else\'s', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob, carol, dave] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol'), await signUp(app, 'dave')];
  const toBob = await send(app, alice, { receiverId: bob.id, content: 'first words' });
  await call(app, alice, 'PATCH', `/messages/${toBob.id}`, { content: 'second words' });
  const fromBob = await send(app, bob, { receiverId: alice.id, content: 'bob writes' });
  await call(app, bob, 'PATCH', `/messages/${fromBob.id}`, { content: 'bob rewrites' });
  const toCarol = await send(app, alice, { receiverId: carol.id, content: 'to carol' });
  const reply = await send(app, carol, { parentMessageId: toCarol.id, content: 'carol replies' });
  await send(app, bob, { receiverId: dave.id, content: 'not alice\'s business' });
  await call(app, alice, 'POST', `/users/${dave.id}/block`);

  const res = await call(app, alice, 'GET', '/me/export');
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/x-ndjson/);
  t.match(res.headers['content-disposition'], /attachment/);
  const lines = parse(res.body);
  t.strictSame([...new Set(lines.map((l) => l.type))], ['account', 'user', 'message', 'history', 'notification', 'block', 'end'], 'sections in order');
  t.match(lines[0], { type: 'account', account: { id: alice.id, username: alice.username } });
  t.strictSame(lines.filter((l) => l.type === 'user').map((l) => l.user.id), [bob.id, carol.id].sort((a, b) => a - b), 'the people she talks with');
  const messages = lines.filter((l) => l.type === 'message').map((l) => l.message);
  t.equal(messages.length, 4, 'her four messages, sent and received');
  t.notOk(res.body.includes('not alice'), 'nothing of bob and dave\'s conversation');
  t.match(messages.find((m) => m.id === toBob.id), { content: 'second words', edited: true, senderId: alice.id, receiverId: bob.id }, 'messages in the API\'s shape, as they are now');
  t.ok(messages.some((m) => m.id === reply.id), 'replies to her included');
  const history = lines.filter((l) => l.type === 'history').map((l) => l.version);
  t.strictSame(history.map((h) => [h.messageId, h.oldContent]), [[toBob.id, 'first words']], 'the history of her own messages only');
  t.equal(lines.filter((l) => l.type === 'notification').length, 2, 'her notifications');
  t.match(lines.filter((l) => l.type === 'block'), [{ block: { userId: dave.id } }], 'her block');
  t.match(lines.at(-1), { type: 'end', counts: { users: 2, messages: 4, history: 1, notifications: 2, blocks: 1 } }, 'the counts, last');
  t.equal((await call(app, null, 'GET', '/me/export')).statusCode, 401, 'signed out: 401');
});

t.test('one snapshot, streamed under backpressure; one export at a time per server; a client that leaves frees its place', async (t) => {
  const { app, db } = await buildTestApp(t, { live: false, env: { EXPORT_MAX_CONCURRENT: '1' } });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const admin = await adminClient(t, db.url);
  // 10,000 messages of 2,000 characters: about 20 MB of lines, far past
  // what the loopback socket's buffers hold, over ten FETCH pages.
  await admin.query(
    `insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, repeat('x', 2000) || g from generate_series(1, 10000) g`,
    [bob.id, alice.id],
  );
  const base = await listen(app);
  const slow = await pausedGet(base, alice, '/me/export');
  t.equal(slow.res.statusCode, 200, 'the export started');
  // Written after the snapshot was taken: not in this export.
  const later = await send(app, bob, { receiverId: alice.id, content: 'after the snapshot' });
  const busy = await call(app, bob, 'GET', '/me/export');
  t.equal(busy.statusCode, 503, 'a second export while the first streams: 503');
  t.equal(busy.json().code, 'EXPORTS_BUSY');
  t.ok(Number(busy.headers['retry-after']) >= 1, 'with Retry-After');
  const lines = parse(await slow.rest());
  const ids = lines.filter((l) => l.type === 'message').map((l) => l.message.id as number);
  t.equal(ids.length, 10000, 'every message of the snapshot');
  t.notOk(ids.includes(later.id), 'and not the one sent after it began');
  t.match(lines.at(-1), { type: 'end', counts: { messages: 10000 } });

  const leaving = await pausedGet(base, alice, '/me/export');
  leaving.res.destroy();
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await call(app, bob, 'GET', '/me/export')).statusCode;
    if (status !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(status, 200, 'a client that hung up mid-export gave its place back');
});

t.test('groups in the export: the caller\'s periods, and others\' group messages only as the caller saw them', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [ann, bob, dan] = [await signUp(app, 'ann'), await signUp(app, 'bob'), await signUp(app, 'dan')];
  const group = (await call(app, ann, 'POST', '/groups', { title: 'Export club', memberIds: [bob.id] })).json() as { id: number };
  const before = await send(app, bob, { groupId: group.id, content: 'before dan joined' });
  await call(app, ann, 'POST', `/groups/${group.id}/members`, { userId: dan.id });
  const during = await send(app, bob, { groupId: group.id, content: 'while dan is in' });
  await call(app, bob, 'PATCH', `/messages/${during.id}`, { content: 'while dan is in (edited)' });
  const own = await send(app, dan, { groupId: group.id, content: 'dan says hi' });
  await call(app, dan, 'DELETE', `/groups/${group.id}/members/${dan.id}`);
  const after = await send(app, bob, { groupId: group.id, content: 'after dan left' });

  const lines = parse((await call(app, dan, 'GET', '/me/export')).body);
  const messages = lines.filter((l) => l.type === 'message').map((l) => l.message);
  t.strictSame(messages.map((m) => m.id), [during.id, own.id], 'the messages of dan\'s period, none from before or after');
  t.equal(messages[0].content, 'while dan is in (edited)', 'as dan reads it now');
  t.notOk(lines.some((l) => l.type === 'history'), 'no history of someone else\'s message');
  t.match(lines.filter((l) => l.type === 'membership'), [{ membership: { groupId: group.id, title: null, role: 'member', leftAt: /Z$/ } }],
    'dan\'s period, ended (the title is for current members only)');
  t.strictSame(lines.filter((l) => l.type === 'user').map((l) => l.user.id).sort(), [bob.id, dan.id].sort(), 'the senders dan read');
  t.notOk(JSON.stringify(lines).includes('before dan joined') || JSON.stringify(lines).includes('after dan left'), 'no word of the other messages');
  t.match(lines.at(-1), { type: 'end', counts: { messages: 2, memberships: 1 } });
  t.ok(before.id && after.id);
});
