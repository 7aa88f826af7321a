import crypto from 'node:crypto';
import pg from 'pg';
import type { DatabasePool, Interceptor } from 'slonik';
import type { Test } from 'tap';
import { adminQuery, asRole, withDatabase } from '../../src/db/admin';
import { createDatabasePool } from '../../src/db/pool';

export type TestDatabase = {
  name: string;
  url: string;
  /** Superuser-ish connection string of the same server (for psql checks). */
  serverUrl: string;
  /** The same database as the runtime role (the authenticator, which starts as the visitor): what the app's pools use. */
  runtimeUrl: string;
  visitorRole: string;
};

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\`, which prepares the template database`);
  return value;
}

/**
 * A fresh database cloned from the migrated template, dropped when the test
 * ends: every test file starts from the same empty schema and shares nothing.
 */
export async function createTestDatabase(t: Test): Promise<TestDatabase> {
  const serverUrl = env('SIGNALBOX_TEST_SERVER_URL');
  const template = env('SIGNALBOX_TEST_TEMPLATE');
  const name = `signalbox_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`create database ${name} template ${template}`);
        break;
      } catch (error) {
        // 55006: the template is briefly busy with a parallel clone.
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
      }
    }
  } finally {
    await client.end();
  }
  t.teardown(() => adminQuery(serverUrl, `drop database if exists ${name} with (force)`));
  const url = withDatabase(serverUrl, name);
  const runtimeUrl = asRole(url, env('SIGNALBOX_TEST_AUTHENTICATOR'), process.env.SIGNALBOX_TEST_AUTHENTICATOR_PASSWORD);
  return { name, url, serverUrl, runtimeUrl, visitorRole: process.env.DATABASE_VISITOR ?? 'signalbox_visitor' };
}

/** A Slonik pool on a fresh test database as the runtime role, ended at teardown. */
export async function createTestPool(
  t: Test,
  interceptors: readonly Interceptor[] = [],
): Promise<{ db: TestDatabase; pool: DatabasePool }> {
  const db = await createTestDatabase(t);
  const pool = await createDatabasePool(db.runtimeUrl, { interceptors, maximumPoolSize: 5, checkShapes: true });
  t.teardown(() => pool.end());
  return { db, pool };
}

/** A plain pg client on `url` (as the connecting role: no RLS), ended at teardown. */
export async function adminClient(t: { teardown(fn: () => unknown): void }, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  return client;
}

/** A fingerprint of every row of every table of the two schemas. */
export async function fingerprint(url: string): Promise<Record<string, string>> {
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

/**
 * Someone else's data: users, conversations, replies, edits, reads and
 * sessions, as a production database holds them.
 */
export const foreignData = `
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
