/**
 * The service on a real topology (scripts/cluster.ts): requests through
 * PgBouncer in transaction mode with fewer server connections than
 * concurrent callers, LISTEN and migrations straight to the primary, and
 * the read-only views on a streaming replica that replays 500 ms late.
 */
import type { FastifyInstance } from 'fastify';
import t, { type Test } from 'tap';
import { sql } from 'slonik';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createDatabasePool } from '../src/db/pool';
import { replicaCannotServe } from '../src/db/errors';
import { sqlStateOf } from '../src/http-errors';
import { migrateDatabase } from '../src/db/setup';
import { missingTools, startCluster, type Cluster } from '../scripts/cluster';
import { call, listen, send, signUp, type Session } from './helpers/app';
import { openStream } from './helpers/sse';
import { tcpProxy } from './helpers/proxy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DELAY_MS = 500;
const MAX_LAG_MS = 2000;

// .ci/run installs pgbouncer and sets SIGNALBOX_REQUIRE_TOPOLOGY=1, so CI never skips this.
const missing = missingTools();
if (missing.length > 0 && process.env.SIGNALBOX_REQUIRE_TOPOLOGY === '1') t.fail(`cannot build the topology: ${missing.join(', ')}`);

type Instance = { app: FastifyInstance; replicaReads: () => number };

/**
 * One instance as a deployment runs it: requests via PgBouncer, LISTEN on
 * the primary, reads on the replica (counted by its router), all as the
 * runtime role (the authenticator).
 */
async function instance(
  cluster: Cluster,
  closers: (() => Promise<void>)[],
  options: { listenerUrl?: string; env?: Record<string, string> } = {},
): Promise<Instance> {
  const pool = await createDatabasePool(cluster.runtime.bouncer, { maximumPoolSize: 12, checkShapes: true });
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    DATABASE_URL: cluster.runtime.bouncer,
    CHECK_SHAPES: '1',
    REPLICA_MAX_LAG_MS: String(MAX_LAG_MS),
    REPLICA_CHECK_MS: '50',
    REGISTER_RATE_LIMIT: '1000',
    ...options.env,
  });
  const app = await buildApp({
    config,
    pool,
    logger: process.env.SIGNALBOX_TEST_LOG ? { level: process.env.SIGNALBOX_TEST_LOG } : false,
    listenerUrl: options.listenerUrl ?? cluster.runtime.primary,
    // The app's read router opens the replica's pool, and a new one after a failure.
    replicas: [
      { name: 'replica', connect: () => createDatabasePool(cluster.runtime.replica, { maximumPoolSize: 4, checkShapes: true, connectionTimeoutMs: 1000 }) },
    ],
  });
  closers.push(async () => {
    await app.close();
    await pool.end();
  });
  // Read views the replica answered (GET /healthz shows the same count).
  return { app, replicaReads: () => app.reads.report()[0]!.reads };
}

async function health(app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/healthz' });
  return { code: res.statusCode, body: res.json() as { status: string; replicas: { status: string; lagMs: number | null }[] } };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// The page size cycles so that each read is a different URL: a cache MISS
// that reaches a database (the views are cached 60 s per URL).
let pageSize = 10;
const conversation = async (app: FastifyInstance, as: Session, other: Session) => {
  pageSize = pageSize >= 99 ? 10 : pageSize + 1;
  const res = await call(app, as, 'GET', `/conversations/${other.id}/messages?limit=${pageSize}`);
  if (res.statusCode !== 200) throw new Error(`conversation: ${res.statusCode} ${res.body}`);
  return (res.json() as { messages: { id: number; content: string }[] }).messages;
};

t.test('PgBouncer in transaction mode and a streaming replica', { skip: missing.length > 0 ? `needs ${missing.join(', ')} (apt-get install pgbouncer)` : false }, async (t) => {
  const cluster = await startCluster({ applyDelayMs: DELAY_MS, poolSize: 2 });
  // The instances close before the cluster goes down, in one place.
  const instances: (() => Promise<void>)[] = [];
  t.teardown(async () => {
    try {
      for (const close of instances.reverse()) await close();
    } finally {
      await cluster.down(); // whatever happened above: no server left running
    }
  });
  const visitor = process.env.DATABASE_VISITOR ?? 'signalbox_visitor';
  await migrateDatabase(cluster.urls.primary, visitor, { quiet: true });
  const one = await instance(cluster, instances);
  const { app } = one;

  t.test('the runtime role, through PgBouncer and on the replica, is the visitor and nothing more', async (t) => {
    const alice = await signUp(app, 'priv_a');
    const bob = await signUp(app, 'priv_b');
    await send(app, alice, { receiverId: bob.id, content: 'only for bob' });
    for (const [where, url, ownerUrl] of [
      ['PgBouncer', cluster.runtime.bouncer, cluster.urls.bouncer],
      ['the replica', cluster.runtime.replica, cluster.urls.replica],
    ] as const) {
      const pool = await createDatabasePool(url, { maximumPoolSize: 1 });
      const ownerPool = await createDatabasePool(ownerUrl, { maximumPoolSize: 1 });
      t.teardown(() => Promise.all([pool.end(), ownerPool.end()]));
      const who = await pool.one(sql.unsafe`select current_user::text as "current", session_user::text as "session"`);
      t.strictSame(who, { current: visitor, session: process.env.DATABASE_AUTHENTICATOR ?? 'signalbox_authenticator' }, `${where}: logged in as the authenticator, running as the visitor`);
      // Not vacuous: the owner sees the message there (once replayed).
      await until(`${where}: the message to be there`, async () =>
        // (On the replica the schema itself may not be replayed yet.)
        Number(await ownerPool.oneFirst(sql.unsafe`select count(*) from app_public.messages where receiver_id = ${bob.id}`).catch(() => 0)) > 0 ? true : undefined,
      );
      const rows = await pool.oneFirst(sql.unsafe`select (select count(*) from app_public.messages) + (select count(*) from app_public.users)`);
      t.equal(Number(rows), 0, `${where}: without a user set, no message and no user is visible`);
      const refused = await pool.query(sql.unsafe`select count(*) from app_private.sessions`).then(() => null, sqlStateOf);
      t.equal(refused, '42501', `${where}: app_private is refused`);
      const owner = await pool.query(sql.unsafe`set role postgres`).then(() => null, sqlStateOf);
      t.equal(owner, '42501', `${where}: set role to the owner fails`);
    }
  });

  t.test('the main paths, 16 callers at once over 2 server connections', async (t) => {
    const users = await Promise.all(Array.from({ length: 8 }, (_, i) => signUp(app, `bouncer${i}`)));
    // Sends: every user to the next, twice, all at once.
    const sends = await Promise.all(
      users.flatMap((u, i) => [0, 1].map((k) => call(app, u, 'POST', '/messages', { receiverId: users[(i + 1) % 8]!.id, content: `hello ${i}.${k}` }))),
    );
    t.strictSame(sends.map((r) => r.statusCode), Array(16).fill(201), 'all 16 sends answered 201');
    const [a, b] = [users[0]!, users[1]!];
    const first = sends[0]!.json() as { id: number };

    const edited = await call(app, a, 'PATCH', `/messages/${first.id}`, { content: 'hello, edited' });
    t.equal(edited.statusCode, 200, 'edit');
    const history = await call(app, a, 'GET', `/messages/${first.id}/history`);
    t.match(history.json(), { versions: [{ oldContent: 'hello 0.0' }] }, 'history keeps the old content');

    const reply = await send(app, b, { parentMessageId: first.id, content: 'a reply' });
    const thread = await call(app, a, 'GET', `/messages/${first.id}/thread`);
    t.equal(thread.statusCode, 200, 'thread');
    t.match(thread.json(), { root: { id: first.id, replies: [{ id: reply.id }] } }, 'the reply is in the thread');

    const inbox = await call(app, b, 'GET', '/inbox/unread');
    t.equal(inbox.statusCode, 200, 'inbox');
    t.ok((inbox.json() as { messages: { id: number }[] }).messages.some((m) => m.id === first.id), 'the message is unread in the inbox');
    t.equal((await call(app, b, 'POST', `/messages/${first.id}/read`)).statusCode, 204, 'mark read');
    const after = await call(app, b, 'GET', '/inbox/unread');
    t.notOk((after.json() as { messages: { id: number }[] }).messages.some((m) => m.id === first.id), 'read at once: gone from the inbox');

    const list = await call(app, a, 'GET', '/conversations');
    t.equal((list.json() as { conversations: unknown[] }).conversations.length, 2, 'two conversations');
    t.equal((await conversation(app, a, b)).length, 3, 'the page has both messages and the reply');
    const notes = await call(app, b, 'GET', '/notifications');
    t.equal(notes.statusCode, 200, 'notifications');
    const found = await call(app, a, 'GET', '/search?q=edited');
    t.equal((found.json() as { results: unknown[] }).results.length, 1, 'search finds the edited message');

    const gone = users[7]!;
    const deleted = await call(app, gone, 'DELETE', '/me', { password: 'correct horse battery' });
    t.equal(deleted.statusCode, 204, 'delete account');
    t.equal((await call(app, gone, 'GET', '/me')).statusCode, 401, 'its session is gone');
    const partner = await call(app, users[0]!, 'GET', '/conversations');
    t.notOk(
      (partner.json() as { conversations: { user: { id: number } }[] }).conversations.some((c) => c.user.id === gone.id),
      'its conversation is gone from the partner\'s list at once',
    );
    t.equal((await call(app, users[0]!, 'GET', `/conversations/${gone.id}/messages`)).statusCode, 404, 'and its page is a 404');
  });

  t.test('read-your-writes with a replica 500 ms behind', async (t) => {
    const alice = await signUp(app, 'ryw_a');
    const bob = await signUp(app, 'ryw_b');
    await until('the replica to serve alice', async () => {
      const before = one.replicaReads();
      await conversation(app, alice, bob);
      return one.replicaReads() > before ? true : undefined;
    });
    for (let i = 0; i < 5; i++) {
      const sent = await send(app, alice, { receiverId: bob.id, content: `ryw ${i}` });
      const before = one.replicaReads();
      const mine = await conversation(app, alice, bob);
      t.equal(mine[0]?.id, sent.id, `send ${i}: the sender's own view has it at once`);
      t.equal(one.replicaReads(), before, `send ${i}: and was not read from the replica, which is ${DELAY_MS} ms behind`);
      const theirs = await conversation(app, bob, alice);
      t.equal(theirs[0]?.id, sent.id, `send ${i}: the receiver on the same instance has it at once too`);
    }
    // Once the replica has replayed it, the same views come from the replica.
    const start = Date.now();
    const served = await until('the replica to take alice\'s reads again', async () => {
      const before = one.replicaReads();
      const mine = await conversation(app, alice, bob);
      return one.replicaReads() > before ? mine : undefined;
    });
    t.equal(served[0]?.content, 'ryw 4', 'the replica serves the newest message once it has it');
    t.comment(`back on the replica after ${Date.now() - start} ms`);
  });

  t.test('what someone else created a moment ago is found, though the replica has not replayed it', async (t) => {
    // Before: bob registered, alice's read of their conversation went to the
    // replica, which did not have bob yet: 404 (2 runs in 2 on a fresh clone).
    const alice = await signUp(app, 'fresh_a');
    const bob = await signUp(app, 'fresh_b');
    await until('the replica to serve alice', async () => {
      const before = one.replicaReads();
      await conversation(app, alice, bob);
      return one.replicaReads() > before ? true : undefined;
    });
    for (let i = 0; i < 5; i++) {
      const carol = await signUp(app, `fresh_c${i}`); // marks carol, not alice: alice's reads may go to the replica
      const profile = await call(app, alice, 'GET', `/users/${carol.username}`);
      t.equal(profile.statusCode, 200, `${i}: carol's profile, the moment she registered`);
      const page = await call(app, alice, 'GET', `/conversations/${carol.id}/messages?limit=${10 + i}`);
      t.equal(page.statusCode, 200, `${i}: and alice's (empty) conversation with her`);
    }
  });

  t.test('another instance: the other participant sees it within the delay plus a bound', async (t) => {
    const two = await instance(cluster, instances);
    const alice = await signUp(app, 'far_a');
    const bob = await signUp(app, 'far_b');
    await sleep(DELAY_MS * 2); // bob's registration replayed: his reads may go to the replica
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      await conversation(two.app, bob, alice); // cached and on the replica, as it may be
      const sent = await send(app, alice, { receiverId: bob.id, content: `far ${i}` });
      const t0 = Date.now();
      await until('bob to see it on instance 2', async () => ((await conversation(two.app, bob, alice))[0]?.id === sent.id ? true : undefined), 5000);
      seen.push(Date.now() - t0);
      // Monotonic: once seen it stays, however the reads are routed.
      for (let k = 0; k < 10; k++) t.equal((await conversation(two.app, bob, alice))[0]?.id, sent.id, `send ${i}: still there (${k})`);
    }
    // The bound: the write's NOTIFY reaching instance 2 (which evicts bob's
    // cached page and sends him to the primary), or else the replica's
    // replay; 2 s over the delay leaves room for a loaded CI machine.
    t.ok(Math.max(...seen) <= DELAY_MS + 2000, `seen after ${seen.join(', ')} ms (bound: the delay + 2 s)`);
  });

  t.test('two instances writing one conversation over shared server connections: each acts on the other\'s writes', async (t) => {
    // PgBouncer here has 2 server connections for every client, so the two
    // instances' writes go through the same backends. Before: an instance
    // took another's write through a backend it had used in the last 5 s
    // for its own echo, skipped the eviction, and served its cached view
    // (memory cache, 60 s) without the message.
    const two = await instance(cluster, instances);
    const alice = await signUp(app, 'pair_a');
    const bob = await signUp(app, 'pair_b');
    // One URL per side: the views stay cached between writes.
    const view = async (inst: FastifyInstance, as: Session, other: Session) => {
      const res = await call(inst, as, 'GET', `/conversations/${other.id}/messages?limit=50`);
      if (res.statusCode !== 200) throw new Error(`conversation: ${res.statusCode} ${res.body}`);
      return { ids: (res.json() as { messages: { id: number }[] }).messages.map((m) => m.id) };
    };
    for (let i = 0; i < 8; i++) {
      const [writer, reader, from, to] = i % 2 === 0 ? [app, two.app, alice, bob] : [two.app, app, bob, alice];
      // Both sides' views cached on both instances before the write.
      for (const inst of [app, two.app]) {
        await view(inst, from, to);
        await view(inst, to, from);
      }
      const sent = await send(writer, from, { receiverId: to.id, content: `pair ${i}` });
      t.equal((await view(writer, from, to)).ids[0], sent.id, `write ${i}: the writer's own view has it at once`);
      // The other instance evicts when the write's NOTIFY arrives; the bound
      // is far below the cache's 60 s, far above a NOTIFY's delivery.
      const seen = await until(`write ${i} on the other instance`, async () => ((await view(reader, to, from)).ids[0] === sent.id ? true : undefined), 10_000).catch(
        () => false,
      );
      t.ok(seen, `write ${i}: the other instance's view shows it once the announcement arrived`);
    }
  });

  t.test('an instance whose LISTEN connection goes silent notices within two probes and acts on what others write again', async (t) => {
    // Before: nothing probed the connection; a half-open one said
    // "listening" for ever, and evictions from other instances were lost.
    const primary = new URL(cluster.runtime.primary);
    const proxy = await tcpProxy(t, Number(primary.port), primary.hostname);
    const viaProxy = new URL(cluster.runtime.primary);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const three = await instance(cluster, instances, { listenerUrl: viaProxy.toString(), env: { LISTEN_PROBE_MS: '200' } });
    const alice = await signUp(app, 'silent_a');
    const bob = await signUp(app, 'silent_b');
    const view = async () => (await call(three.app, bob, 'GET', `/conversations/${alice.id}/messages?limit=50`)).json().messages.length as number;
    t.equal(await view(), 0, 'instance 3 caches bob\'s empty view');
    t.ok(three.app.live.listening(), 'and listens through the proxy');
    proxy.stall();
    await send(app, alice, { receiverId: bob.id, content: 'lost announcement' });
    await until('instance 3 to declare its LISTEN connection down', async () => (three.app.live.listening() ? undefined : true), 5000);
    await until('a new LISTEN connection', async () => (three.app.live.listening() ? true : undefined), 10_000);
    t.equal(await view(), 1, 'the view cached before the silence is gone: the message is there');
    await send(app, alice, { receiverId: bob.id, content: 'announced again' });
    t.equal(await until('the next write to reach instance 3', async () => ((await view()) === 2 ? 2 : undefined), 5000), 2, 'and the next announcement arrives on the new connection');
  });

  t.test('a replica that lags more than REPLICA_MAX_LAG_MS takes no reads', async (t) => {
    const alice = await signUp(app, 'lag_a');
    const bob = await signUp(app, 'lag_b');
    await cluster.setApplyDelay(MAX_LAG_MS * 3);
    t.teardown(() => cluster.setApplyDelay(DELAY_MS));
    await send(app, alice, { receiverId: bob.id, content: 'behind' });
    const lagging = await until('the replica to be reported lagging', async () => {
      const h = await health(app);
      return h.body.replicas[0]?.status === 'lagging' ? h : undefined;
    });
    t.equal(lagging.code, 200, '/healthz still answers 200');
    t.equal(lagging.body.status, 'degraded', 'and says degraded');
    t.ok((lagging.body.replicas[0]?.lagMs ?? 0) > MAX_LAG_MS, `lag reported: ${lagging.body.replicas[0]?.lagMs} ms`);
    const before = one.replicaReads();
    const carol = await signUp(app, 'lag_c');
    await sleep(200);
    const res = await call(app, carol, 'GET', '/conversations');
    t.equal(res.statusCode, 200, 'reads are answered');
    t.equal(one.replicaReads(), before, 'from the primary');
    await cluster.setApplyDelay(DELAY_MS);
    await until('the replica to catch up', async () => ((await health(app)).body.replicas[0]?.status === 'ok' ? true : undefined), 20_000);
    t.pass('back to ok once it caught up');
  });

  t.test('replica stopped mid-test: reads fall back to the primary, then return', async (t) => {
    const alice = await signUp(app, 'down_a');
    const bob = await signUp(app, 'down_b');
    await send(app, alice, { receiverId: bob.id, content: 'before the outage' });
    await until('the replica to serve bob', async () => {
      const before = one.replicaReads();
      await call(app, bob, 'GET', '/inbox/unread');
      return one.replicaReads() > before ? true : undefined;
    });
    const codes: number[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        codes.push((await call(app, bob, 'GET', '/inbox/unread')).statusCode);
        codes.push((await call(app, bob, 'GET', `/conversations/${alice.id}/messages?limit=5`)).statusCode);
      }
    })();
    await sleep(200);
    await cluster.stopReplica();
    const down = await until('/healthz to report the replica down', async () => {
      const h = await health(app);
      return h.body.replicas[0]?.status === 'down' ? h : undefined;
    });
    t.equal(down.body.status, 'degraded', '/healthz: degraded, replica down');
    await sleep(300);
    const during = await call(app, bob, 'GET', '/inbox/unread');
    t.equal(during.statusCode, 200, 'a read while it is down is answered');
    await cluster.startReplica();
    await until('the replica to be ok again', async () => ((await health(app)).body.replicas[0]?.status === 'ok' ? true : undefined), 30_000);
    reading = false;
    await reader;
    t.ok(codes.length > 10, `${codes.length} reads across the outage`);
    t.strictSame([...new Set(codes)], [200], 'every one of them answered 200');
    await until('reads to return to the replica', async () => {
      const before = one.replicaReads();
      await call(app, bob, 'GET', '/inbox/unread');
      return one.replicaReads() > before ? true : undefined;
    });
    t.pass('reads returned to the replica');
  });

  t.test('a replica that crashes under a read: the read goes to the primary, the pool is replaced, nothing leaks', async (t) => {
    const alice = await signUp(app, 'crash_a');
    const bob = await signUp(app, 'crash_b');
    await send(app, alice, { receiverId: bob.id, content: 'before the crash' });
    const chosen = await until('a replica for bob', async () => app.reads.replicaFor(bob.id) ?? undefined);
    // A read in flight on the replica's pool when it crashes: its backend
    // vanishes without a word. Slonik 47 then keeps that connection in the
    // pool for good, and ending the pool rejects; the router must not reuse
    // the pool nor fail on it when it closes.
    const slow = chosen.pool.query(sql.unsafe`select pg_sleep(30)`).then(() => null, (error: unknown) => error);
    await sleep(300);
    await cluster.crashReplica();
    const error = await slow;
    t.ok(replicaCannotServe(error), `the read failed as unavailable (${(error as Error | null)?.message})`);
    app.reads.failed(chosen, error); // what a route's read does with such an error
    const during = await call(app, bob, 'GET', '/inbox/unread');
    t.equal(during.statusCode, 200, 'reads are answered by the primary meanwhile');
    await cluster.startReplica();
    await until('the replica to be ok again', async () => ((await health(app)).body.replicas[0]?.status === 'ok' ? true : undefined), 30_000);
    const again = await until('a replica for bob again', async () => app.reads.replicaFor(bob.id) ?? undefined);
    t.not(again.pool, chosen.pool, 'on a new pool');
    const before = one.replicaReads();
    t.equal((await call(app, bob, 'GET', '/inbox/unread')).statusCode, 200, 'which serves');
    t.equal(one.replicaReads(), before + 1, 'from the replica');
  });

  t.test('the live stream: every notification exactly once', async (t) => {
    const base = await listen(app);
    const bob = await signUp(app, 'live_b');
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => signUp(app, `live_s${i}`)));
    const stream = await openStream(`${base}/notifications/stream`, { authorization: `Bearer ${bob.token}` });
    t.teardown(() => stream.close());
    t.equal(stream.status, 200, 'stream open');
    const sent = await Promise.all(
      senders.flatMap((s, i) => Array.from({ length: 5 }, (_, k) => send(app, s, { receiverId: bob.id, content: `live ${i}.${k}` }))),
    );
    const events = await stream.waitFor(sent.length, 15_000);
    await sleep(500);
    t.equal(stream.events.length, sent.length, `${sent.length} events, no more`);
    const ids = events.map((e) => (JSON.parse(e.data) as { messageId: number }).messageId);
    t.strictSame([...ids].sort((x, y) => x - y), sent.map((m) => m.id).sort((x, y) => x - y), 'one per message, each once');
    t.equal(new Set(events.map((e) => e.id)).size, sent.length, 'distinct event ids');
  });
});
