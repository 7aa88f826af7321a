/**
 * The database pool survives losing its connections in the middle of
 * queries (src/db/pool.ts): the server crashed, PgBouncer restarted, the
 * network dropped. Here a TCP proxy in front of PostgreSQL drops every
 * socket while both of the pool's connections run a query. It also
 * reports every transaction it retries (a retry must not hide a deadlock).
 */
import t from 'tap';
import { sql } from 'slonik';
import { z } from 'zod';
import { createDatabasePool } from '../src/db/pool';
import { createTestDatabase } from './helpers/db';
import { tcpProxy } from './helpers/proxy';
import { within } from './helpers/time';

t.test('a pool whose connections vanished mid-query serves again once the server is back', async (t) => {
  const db = await createTestDatabase(t);
  const target = new URL(db.url);
  const proxy = await tcpProxy(t, Number(target.port || 5432), target.hostname);
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const pool = await createDatabasePool(viaProxy.toString(), { maximumPoolSize: 2, connectionTimeoutMs: 2000 });

  const slow = [1, 2].map(() => pool.query(sql.unsafe`select pg_sleep(3)`).then(() => null, (error: unknown) => error as Error));
  await new Promise((r) => setTimeout(r, 300));
  await proxy.cut();
  const errors = await Promise.all(slow);
  t.strictSame(errors.map((e) => e?.constructor.name), ['BackendTerminatedUnexpectedlyError', 'BackendTerminatedUnexpectedlyError'], 'both queries lost their backend');

  await proxy.restore();
  // Slonik 47 alone keeps both connections "pending destroy" for good: this
  // query would wait for a free connection forever.
  let answer: unknown = null;
  for (let attempt = 0; attempt < 20 && answer !== 1; attempt++) {
    answer = await within(pool.oneFirst(sql.unsafe`select 1`), 2000, 'a query').catch((error: Error) => error);
    if (answer !== 1) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(answer, 1, 'the pool answers again');
  t.equal(await within(pool.end(), 5000, 'ending the pool'), undefined, 'and ends cleanly');
});

t.test('every transaction retry is reported with its SQLSTATE; single statements are not retried behind the caller\'s back', async (t) => {
  const db = await createTestDatabase(t);
  const retries: { sqlstate: string; sql: string }[] = [];
  const pool = await createDatabasePool(db.url, { maximumPoolSize: 2, onRetry: (r) => retries.push(r) });
  t.teardown(() => pool.end());
  let attempts = 0;
  const result = await pool.transaction(async (tx) => {
    attempts++;
    // A deadlock the first time (as PostgreSQL reports one), then success.
    if (attempts === 1) await tx.query(sql.unsafe`do $$ begin raise exception 'deadlock detected' using errcode = '40P01'; end $$`);
    return tx.oneFirst(sql.type(z.object({ n: z.number() }))`select 1 as n`);
  });
  t.equal(result, 1, 'the transaction succeeded on its second attempt');
  t.equal(attempts, 2);
  t.strictSame(retries.map((r) => r.sqlstate), ['40P01'], 'the retry was reported, with its SQLSTATE');
  retries.length = 0;
  await t.rejects(pool.query(sql.unsafe`do $$ begin raise exception 'serialization' using errcode = '40001'; end $$`),
    'a single statement\'s 40001 reaches the caller (no silent retry)');
  t.strictSame(retries, [], 'and outside a transaction nothing is retried, so nothing is reported');
});
