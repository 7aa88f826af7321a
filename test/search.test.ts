/**
 * GET /search: full-text search over the caller's own messages (migration
 * 000009, src/queries/search.ts): scoping, ranking, snippets as text
 * segments, pagination, edits, validation; and the same rule from psql.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { buildTestApp, call, send, signUp, type Session, type TestApp } from './helpers/app';
import { adminClient } from './helpers/db';

type Hit = { message: { id: number; content: string }; rank: number; snippet: { text: string; match: boolean }[] };

async function search(app: TestApp['app'], who: Session, query: string): Promise<{ status: number; hits: Hit[]; next: string | null; body: string }> {
  const res = await call(app, who, 'GET', `/search?${query}`);
  const body = res.statusCode === 200 ? (res.json() as { results: Hit[]; nextCursor: string | null }) : { results: [], nextCursor: null };
  return { status: res.statusCode, hits: body.results, next: body.nextCursor, body: res.body };
}
const ids = (hits: Hit[]) => hits.map((h) => h.message.id);

t.test('a stranger never finds another conversation\'s words; with= keeps to one conversation', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob, carol] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol')];
  const ab = await send(app, alice, { receiverId: bob.id, content: 'the aubergine recipe is attached' });
  const ca = await send(app, carol, { receiverId: alice.id, content: 'aubergines from the market' });
  await send(app, bob, { receiverId: carol.id, content: 'nothing about vegetables' });

  t.strictSame(ids((await search(app, alice, 'q=aubergine')).hits).sort(), [ab.id, ca.id].sort(), 'alice: both of her conversations (stemmed: aubergines)');
  t.strictSame(ids((await search(app, bob, 'q=aubergine')).hits), [ab.id], 'bob: only his');
  t.strictSame(ids((await search(app, carol, 'q=recipe')).hits), [], 'carol never finds alice and bob\'s words');
  t.strictSame(ids((await search(app, alice, `q=aubergine&with=${carol.id}`)).hits), [ca.id], 'with= one conversation');
  t.strictSame(ids((await search(app, bob, `q=aubergine&with=${carol.id}`)).hits), [], 'with= someone else\'s conversation: nothing');
});

t.test('edits re-index; earlier versions are not searchable by either participant', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob, carol] = [await signUp(app, 'alice'), await signUp(app, 'bob'), await signUp(app, 'carol')];
  const m = await send(app, alice, { receiverId: bob.id, content: 'meet at the lighthouse' });
  t.strictSame(ids((await search(app, carol, 'q=lighthouse')).hits), [], 'a stranger does not find it');
  t.equal((await call(app, alice, 'PATCH', `/messages/${m.id}`, { content: 'meet at the harbour' })).statusCode, 200);
  for (const who of [alice, bob]) {
    t.strictSame(ids((await search(app, who, 'q=lighthouse')).hits), [], `${who === alice ? 'sender' : 'receiver'}: the old word is gone`);
    t.strictSame(ids((await search(app, who, 'q=harbour')).hits), [m.id], 'the new word is found');
  }
  t.equal((await call(app, bob, 'GET', `/messages/${m.id}/history`)).json().versions[0].oldContent, 'meet at the lighthouse', 'while the history still shows it');
  t.strictSame(ids((await search(app, carol, 'q=lighthouse')).hits), [], 'and a stranger finds neither the old words (history)…');
  t.strictSame(ids((await search(app, carol, 'q=harbour')).hits), [], '…nor the new ones');
});

t.test('ranking on a fixed corpus; websearch syntax', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const once = await send(app, alice, { receiverId: bob.id, content: 'a kayak trip in june, then some hiking and more hiking in july' });
  const thrice = await send(app, alice, { receiverId: bob.id, content: 'kayak kayak kayak' });
  const twice = await send(app, bob, { receiverId: alice.id, content: 'my kayak is a good kayak' });
  const none = await send(app, bob, { receiverId: alice.id, content: 'kayaking lessons' });
  const ranked = (await search(app, alice, 'q=kayak')).hits;
  t.strictSame(ids(ranked), [thrice.id, twice.id, none.id, once.id], 'more occurrences in a shorter text rank higher (ts_rank)');
  t.ok(ranked.every((h, i) => i === 0 || ranked[i - 1]!.rank >= h.rank), 'ranks descend');
  t.strictSame(ids((await search(app, alice, `q=${encodeURIComponent('"kayak trip"')}`)).hits), [once.id], 'a "phrase"');
  t.strictSame(ids((await search(app, alice, `q=${encodeURIComponent('kayak -hiking')}`)).hits).sort(), [thrice.id, twice.id, none.id].sort(), '-excluded');
  t.strictSame(ids((await search(app, alice, `q=${encodeURIComponent('june or lessons')}`)).hits).sort(), [once.id, none.id].sort(), 'or');
  const stop = await search(app, alice, 'q=the');
  t.equal(stop.status, 200);
  t.strictSame(stop.hits, [], 'stop words only: nothing, not an error');
  const ops = await search(app, alice, `q=${encodeURIComponent("!!! & | :* ') or 1=1 --")}`);
  t.equal(ops.status, 200, 'tsquery operators and SQL fragments are just text');
});

t.test('snippets are text segments: markup in a message stays text', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const evil = '<img src=x onerror=alert(1)> the pineapple \u0002fake mark\u0003 <script>steal()</script>';
  await send(app, alice, { receiverId: bob.id, content: evil });
  const [hit] = (await search(app, bob, 'q=pineapple')).hits;
  t.ok(hit, 'found');
  t.strictSame(hit!.snippet.filter((s) => s.match).map((s) => s.text), ['pineapple'], 'only the matching word is marked');
  t.notOk(hit!.snippet.some((s) => s.match && s.text.includes('fake')), 'control characters in the content cannot fake a mark');
  t.equal(hit!.message.content, evil, 'the message itself comes back intact');
  for (const s of hit!.snippet) t.notOk(/[\u0002\u0003]/.test(s.text), 'no mark characters leak into the text');
});

t.test('pagination is complete: every hit once, in rank order', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const sent: number[] = [];
  for (let i = 0; i < 23; i++) {
    sent.push((await send(app, i % 2 ? alice : bob, { receiverId: i % 2 ? bob.id : alice.id, content: `${'filler '.repeat(i % 5)}walrus number ${i}` })).id);
  }
  const seen: Hit[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const page = await search(app, alice, `q=walrus&limit=5${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    t.equal(page.status, 200);
    t.ok(page.hits.length <= 5);
    seen.push(...page.hits);
    after = page.next;
    pages++;
  } while (after && pages < 20);
  t.equal(pages, 5, '23 hits in pages of 5');
  t.strictSame(ids(seen).sort((a, b) => a - b), [...sent].sort((a, b) => a - b), 'every hit exactly once');
  t.ok(seen.every((h, i) => i === 0 || seen[i - 1]!.rank > h.rank || (seen[i - 1]!.rank === h.rank && seen[i - 1]!.message.id > h.message.id)), 'in (rank, id) order across pages');
});

t.test('validation: every bad input is a 400 with the error shape', async (t) => {
  const { app } = await buildTestApp(t, { live: false });
  const alice = await signUp(app, 'alice');
  for (const [query, why] of [
    ['', 'no q'],
    ['q=', 'empty q'],
    ['q=%20%20', 'blank q'],
    [`q=${'a'.repeat(201)}`, 'too long'],
    ['q=a%00b', 'NUL'],
    ['q=walrus&limit=0', 'limit 0'],
    ['q=walrus&limit=51', 'limit above 50'],
    ['q=walrus&with=abc', 'with not an id'],
    ['q=walrus&after=1;drop', 'cursor not one of ours'],
    ['q=walrus&extra=1', 'unknown parameter'],
  ] as const) {
    const res = await call(app, alice, 'GET', `/search?${query}`);
    t.equal(res.statusCode, 400, why);
    t.match(res.json(), { statusCode: 400, code: String }, `${why}: the error shape`);
  }
  t.equal((await call(app, null, 'GET', '/search?q=x')).statusCode, 401, 'anonymous: 401');
});

t.test('psql: the generated column follows edits; the index serves @@', async (t) => {
  const { db } = await buildTestApp(t, { live: false });
  const out = execFileSync('psql', [db.url, '-v', 'ON_ERROR_STOP=1', '-qAt'], {
    input: `
      insert into app_public.users (username) values ('psql_a'), ('psql_b');
      insert into app_public.messages (sender_id, receiver_id, content)
        select a.id, b.id, 'the zeppelin departs' from app_public.users a, app_public.users b where a.username = 'psql_a' and b.username = 'psql_b';
      select count(*) from app_public.messages where search @@ websearch_to_tsquery('english', 'zeppelins');
      update app_public.messages set content = 'the balloon departs' where content = 'the zeppelin departs';
      select count(*) from app_public.messages where search @@ websearch_to_tsquery('english', 'zeppelin');
      set enable_seqscan = off;
      explain (costs off) select id from app_public.messages where search @@ websearch_to_tsquery('english', 'balloon');
    `,
    encoding: 'utf8',
  });
  const lines = out.trim().split('\n');
  t.equal(lines[0], '1', 'found by its stem');
  t.equal(lines[1], '0', 'gone after the edit');
  t.match(out, /messages_search_idx/, 'the GIN index serves the match');
});

t.test('a search is bounded: it ranks the newest SEARCH_RANK_WINDOW matches, and stops at SEARCH_TIMEOUT_MS', async (t) => {
  const first = await buildTestApp(t, { live: false, env: { SEARCH_RANK_WINDOW: '10' } });
  const { app, db } = first;
  const [alice, bob] = [await signUp(app, 'alice'), await signUp(app, 'bob')];
  const admin = await adminClient(t, db.url);
  // 20 old messages that rank high (the word five times), then 20 newer
  // ones that rank low (once, in a longer text).
  await admin.query(`insert into app_public.messages (sender_id, receiver_id, content)
    select $1, $2, 'okapi okapi okapi okapi okapi ' || g from generate_series(1, 20) g`, [alice.id, bob.id]);
  const { rows: [edge] } = await admin.query(`select max(id)::int as id from app_public.messages`);
  await admin.query(`insert into app_public.messages (sender_id, receiver_id, content)
    select $1, $2, 'an okapi among many other words in a long sentence number ' || g from generate_series(1, 20) g`, [alice.id, bob.id]);
  const ids: number[] = [];
  let after: string | null = null;
  do {
    const res = await call(app, bob, 'GET', `/search?q=okapi&limit=4${after ? `&after=${after}` : ''}`);
    t.equal(res.statusCode, 200);
    const body = res.json() as { results: { message: { id: number } }[]; nextCursor: string | null };
    ids.push(...body.results.map((r) => r.message.id));
    after = body.nextCursor;
  } while (after);
  t.equal(ids.length, 10, 'the pages together hold the window: 10 matches');
  t.ok(ids.every((id) => id > edge.id), 'all of them among the newest; the older, higher-ranked ones are outside the window');
  t.equal(new Set(ids).size, 10, 'none twice across pages');

  // The time budget: a thousand-fold larger window over 20,000 matches and a 1 ms budget.
  await admin.query(`insert into app_public.messages (sender_id, receiver_id, content)
    select $1, $2, 'okapi herd ' || g from generate_series(1, 20000) g`, [alice.id, bob.id]);
  const slow = await buildTestApp(t, { live: false, shareWith: first, env: { SEARCH_TIMEOUT_MS: '1', SEARCH_RANK_WINDOW: '100000' } });
  const res = await call(slow.app, bob, 'GET', '/search?q=okapi');
  t.equal(res.statusCode, 503, 'over its budget: 503');
  t.equal(res.json().code, 'DATABASE_BUSY');
  t.ok(res.headers['retry-after'], 'with Retry-After');
});
