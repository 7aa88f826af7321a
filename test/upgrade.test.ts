/**
 * The groups migration (000020) upgrades a database full of data: applied
 * with psql to a database migrated to 000019 and written to, it keeps
 * every message as it was and derives the direct conversations, which
 * equal a recount. (Its time and locks on 1,000,000 messages: npm run
 * bench:upgrade, docs/groups.md.)
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { adminQuery, withDatabase } from '../src/db/admin';
import { projectRoot } from '../src/paths';

const committed = path.join(projectRoot, 'migrations', 'committed');
const files = fs.readdirSync(committed).filter((f) => f.endsWith('.sql')).sort();
const groupsMigration = files.findIndex((f) => f.startsWith('000020-'));

/** Applies one committed migration as graphile-migrate does: one transaction, the placeholder filled in (psql variables). */
function apply(url: string, file: string, visitor: string): void {
  const result = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `DATABASE_VISITOR=${visitor}`, '--single-transaction',
    '-d', url, '-f', path.join(committed, file)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${file}: ${result.stderr}`);
}

t.test('000020 on a database with messages: nothing of them changes; the direct conversations equal a recount', async (t) => {
  const serverUrl = process.env.SIGNALBOX_TEST_SERVER_URL!;
  const visitor = process.env.DATABASE_VISITOR ?? 'signalbox_visitor';
  const name = `signalbox_test_${process.pid}_upgrade_${crypto.randomBytes(3).toString('hex')}`;
  await adminQuery(serverUrl, `create database ${name}`);
  t.teardown(() => adminQuery(serverUrl, `drop database if exists ${name} with (force)`));
  const url = withDatabase(serverUrl, name);
  t.ok(groupsMigration > 0, 'the groups migration is there');
  for (const file of files.slice(0, groupsMigration)) apply(url, file, visitor);

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  t.teardown(() => db.end());
  // 30 users, 3,000 direct messages between random pairs (themselves
  // included), a third of them replies, some read, some edited.
  await db.query(`
    insert into app_public.users (username) select 'user_' || i from generate_series(1, 30) i;
    insert into app_public.messages (sender_id, receiver_id, content, sent_at)
    select s, r, 'message ' || i, now() - (3000 - i) * interval '1 second'
      from (select i, 1 + (i * 7) % 30 as s, 1 + (i * 13 + i / 50) % 30 as r from generate_series(1, 2000) i) x;
    insert into app_public.messages (sender_id, parent_message_id, content)
    select m.receiver_id, m.id, 'reply to ' || m.id from app_public.messages m where m.id % 2 = 0;
    update app_public.messages set read = true where id % 3 = 0 and sender_id <> receiver_id;
    update app_public.messages set content = content || ' (edited)' where id % 10 = 0;
  `);
  const snapshot = `select md5(string_agg(row(id, sender_id, receiver_id, parent_message_id, content, sent_at, edited, edited_at,
                                              read, read_at, thread_root_id, depth, reply_count)::text, ',' order by id)) as h,
                           (select count(*) from app_public.notifications)::int as notifications,
                           (select count(*) from app_public.message_history)::int as history
                      from app_public.messages`;
  const before = (await db.query(snapshot)).rows[0];

  apply(url, files[groupsMigration]!, visitor);

  t.strictSame((await db.query(snapshot)).rows[0], before, 'every message, notification and version as it was');
  const recount = await db.query<{ missing: number; extra: number; wrong_time: number; direct: number }>(`
    with pairs as (select user_low, user_high, min(sent_at) as first from app_public.messages group by 1, 2)
    select (select count(*) from pairs p where not exists (select from app_public.conversations c
              where c.kind = 'direct' and (c.user_low, c.user_high) = (p.user_low, p.user_high)))::int as missing,
           (select count(*) from app_public.conversations c where not exists (select from pairs p
              where (c.user_low, c.user_high) = (p.user_low, p.user_high)))::int as extra,
           (select count(*) from app_public.conversations c join pairs p using (user_low, user_high) where c.created_at <> p.first)::int as wrong_time,
           (select count(*) from app_public.conversations)::int as direct`);
  const r = recount.rows[0]!;
  t.strictSame({ missing: r.missing, extra: r.extra, wrong_time: r.wrong_time }, { missing: 0, extra: 0, wrong_time: 0 },
    `one direct conversation per pair that has written (${r.direct}), opened at its first message`);
  const counts = await db.query<{ bad: number }>(`
    select count(*)::int as bad from app_public.messages p
     where p.reply_count <> (select count(*) from app_public.messages c where c.parent_message_id = p.id)`);
  t.equal(counts.rows[0]!.bad, 0, 'reply counts equal a recount');
  await db.query('analyze; set enable_seqscan = off');
  const inbox = await db.query<{ 'QUERY PLAN': string }>(`explain select id from app_public.messages where receiver_id = 3 and read = false order by id desc limit 50`);
  t.match(inbox.rows.map((p) => p['QUERY PLAN']).join('\n'), /messages_unread_inbox_idx/, 'the rebuilt unread index still serves the inbox');

  await db.query('reset enable_seqscan');
  // After the upgrade, writes keep the derived state: a new pair opens its
  // conversation; a group works.
  await db.query(`insert into app_public.users (username) values ('newcomer')`);
  await db.query(`insert into app_public.messages (sender_id, receiver_id, content)
                  select id, 1, 'hello' from app_public.users where username = 'newcomer'`);
  const opened = await db.query<{ n: number }>(`select count(*)::int as n from app_public.conversations c join app_public.users u on u.id = c.user_high
                                                 where u.username = 'newcomer' and c.user_low = 1`);
  t.equal(opened.rows[0]!.n, 1, 'a first message opens the direct conversation');
});
