/**
 * Runs every test/sql/*.sql check through psql, the way a DBA would, against
 * a fresh database. Each "ok - …" line a script prints is one assertion; a
 * failing assertion raises "not ok - …", psql stops and exits non-zero.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { projectRoot } from '../src/paths';
import { createTestDatabase } from './helpers/db';

const sqlDir = path.join(projectRoot, 'test', 'sql');
const scripts = fs.readdirSync(sqlDir).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();

/**
 * Someone else's data: users, conversations, replies, edits, reads and
 * sessions, as a production database holds them.
 */
const foreignData = `
  insert into app_public.users (username, display_name)
  select 'someone_' || g, 'Someone ' || g from generate_series(1, 40) g;
  insert into app_public.messages (sender_id, receiver_id, content)
  select u1.id, u2.id, 'bulk ' || g || ' from ' || u1.username
    from generate_series(1, 25) g
    join app_public.users u1 on u1.username like 'someone_%'
    join app_public.users u2 on u2.id = u1.id % 40 + (select min(id) from app_public.users);
  insert into app_public.messages (sender_id, parent_message_id, content)
  select receiver_id, id, 'reply to ' || id from app_public.messages where id % 3 = 0;
  update app_public.messages set content = content || ' (edited)' where id % 5 = 0;
  update app_public.messages set read = true where id % 2 = 0;
  insert into app_private.sessions (token_hash, user_id, expires_at)
  select sha256(id::text::bytea), id, now() + interval '1 day' from app_public.users;
`;

/** A fingerprint of every row of every table of the two schemas. */
async function fingerprint(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `select format('%I.%I', schemaname, tablename) as name from pg_tables
        where schemaname in ('app_public', 'app_private') order by 1`,
    );
    const result: Record<string, string> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ md5: string; n: string }>(
        `select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as md5, count(*) as n from ${name} t`,
      );
      result[name] = `${rows[0]!.n} rows, md5 ${rows[0]!.md5}`;
    }
    return result;
  } finally {
    await client.end();
  }
}

t.test('psql checks', async (t) => {
  t.ok(scripts.length >= 7, 'the psql checks are present');
  const db = await createTestDatabase(t);
  // The scripts must run on a database that already holds other people's
  // data, and leave it exactly as it was.
  const seed = new pg.Client({ connectionString: db.url });
  await seed.connect();
  await seed.query(foreignData);
  await seed.end();
  const before = await fingerprint(db.url);
  t.ok(Number(before['app_public.messages']!.split(' ')[0]) > 1000, 'the database holds other users\' data');
  for (const script of scripts) {
    await t.test(script, async (t) => {
      const text = fs.readFileSync(path.join(sqlDir, script), 'utf8');
      const plan = Number(/^-- plan: (\d+)/m.exec(text)?.[1]);
      t.ok(plan > 0, 'the script declares its plan');
      const result = spawnSync(
        'psql',
        ['-X', '-q', '-v', `visitor=${db.visitorRole}`, '-d', db.url, '-f', path.join('test', 'sql', script)],
        { cwd: projectRoot, encoding: 'utf8' },
      );
      // One assertion per script (its checks are counted, not echoed as
      // passes): psql exits 0 only if no check raised, and every planned
      // check printed its ok line.
      const oks = result.stdout.split('\n').filter((line) => line.startsWith('ok - '));
      t.equal(result.status, 0, `psql exits 0${result.stderr ? `: ${result.stderr.trim()}` : ''}`);
      t.equal(oks.length, plan, `all ${plan} checks passed:\n  ${oks.map((l) => l.slice(5)).join('\n  ')}`);
    });
  }
  t.same(await fingerprint(db.url), before, 'every table is byte-for-byte as it was: the scripts touched only their own rows');
});
