/**
 * The database pool survives losing its connections in the middle of
 * queries (src/db/pool.ts): the server crashed, PgBouncer restarted, the
 * network dropped. Here a TCP proxy in front of PostgreSQL drops every
 * socket while both of the pool's connections run a query.
 */
import t from 'tap';
import { sql } from 'slonik';
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
  t.same(errors.map((e) => e?.constructor.name), ['BackendTerminatedUnexpectedlyError', 'BackendTerminatedUnexpectedlyError'], 'both queries lost their backend');

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
