import crypto from 'node:crypto';
import pg from 'pg';
import type { DatabasePool, Interceptor } from 'slonik';
import type { Test } from 'tap';
import { adminQuery, withDatabase } from '../../src/db/admin';
import { createDatabasePool } from '../../src/db/pool';

export type TestDatabase = {
  name: string;
  url: string;
  /** Superuser-ish connection string of the same server (for psql checks). */
  serverUrl: string;
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
  return { name, url: withDatabase(serverUrl, name), serverUrl, visitorRole: process.env.DATABASE_VISITOR ?? 'signalbox_visitor' };
}

/** A Slonik pool on a fresh test database, ended at teardown. */
export async function createTestPool(
  t: Test,
  interceptors: readonly Interceptor[] = [],
): Promise<{ db: TestDatabase; pool: DatabasePool }> {
  const db = await createTestDatabase(t);
  const pool = await createDatabasePool(db.url, { interceptors, maximumPoolSize: 5, checkShapes: true });
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
