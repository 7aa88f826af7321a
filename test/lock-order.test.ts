/**
 * One lock order for every write path (docs/database.md, "Lock order"): the users
 * row an account deletion removes, the message rows a statement writes,
 * the rows hanging off them, the parent a reply counts on, then the
 * delivery counters in user-id order. bench/race.ts races two API-shaped
 * transactions (the request role, the caller, one statement, commit) that
 * touch the same rows from both ends, 1,000 times per scenario, on plain
 * pg clients: no retry anywhere, so a deadlock reaches the client as 40P01
 * and is counted. Before the order was fixed, edit-vs-reply gave about one
 * deadlock in five pairs and the bulk mark-read lost to replies.
 */
import t from 'tap';
import { deadlockCount, lockOrderScenarios } from '../bench/race';
import { adminClient, createTestDatabase } from './helpers/db';

t.test('lock order: no deadlock in 1,000 racing pairs of each everyday write', async (t) => {
  const db = await createTestDatabase(t);
  const before = await deadlockCount(db.url);
  const scenarios = await lockOrderScenarios(db.url, db.visitorRole);
  t.equal(scenarios.length, 6, 'six scenarios ran');
  for (const { name, seen } of scenarios) {
    t.strictSame(seen.filter((c) => c === '40P01'), [], `${name}: no client saw a deadlock`);
    // The only failures allowed are the losers of a deletion race: a reply
    // that comes second finds its parent (and receiver) gone, SB005 or a
    // foreign key violation (a 404 through the API).
    const allowed = name === 'account deletion vs reply' ? ['SB005', '23503'] : [];
    t.strictSame(seen.filter((c) => !allowed.includes(c)), [], `${name}: every other transaction committed`);
  }
  t.equal(await deadlockCount(db.url), before, 'pg_stat_database.deadlocks unchanged');

  const admin = await adminClient(t, db.url);
  const { rows: [edited] } = await admin.query(
    `select m.reply_count, (select count(*)::int from app_public.message_history h where h.message_id = m.id) as versions
       from app_public.messages m where m.id = (select min(id) from app_public.messages where sender_id = (
         select id from app_public.users where username = 'lock_sender'))`);
  t.strictSame([edited.reply_count, edited.versions], [1000, 1000], 'the raced message: 1,000 replies counted, 1,000 versions kept');
  const { rows: [bulk] } = await admin.query(
    `select count(*) filter (where not read)::int as unread, count(*)::int as n from app_public.messages where content like 'bulk %' and parent_message_id is null`);
  t.strictSame([bulk.n, bulk.unread], [50_000, 0], 'every bulk mark-read committed: 50,000 messages read');
  const { rows: [left] } = await admin.query(`select count(*)::int as n from app_public.users where username like 'leaver_%'`);
  t.equal(left.n, 0, 'every raced account was deleted');
});
