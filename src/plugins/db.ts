import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { DatabasePool } from 'slonik';
import { replicaCannotServe } from '../db/errors';
import { ReadRouter, type ReplicaSource } from '../db/replicas';
import { asUser, type Caller, type Tx, type TxSettings, type WriteCaller } from '../db/transaction';
import { Gate, poolBusy } from '../db/gate';
import { databaseBusy, rateLimited, unauthorized } from '../http-errors';
import { changeOfTransaction, type Change } from '../queries/changes';

/** Runs after a writing request's transaction committed, before the answer (cache eviction, revoked sessions). */
export type CommitHook = (change: Change) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    pool: DatabasePool;
    /** The primary's pool for reads; the same as `pool` unless a read pool was given. */
    readPool: DatabasePool;
    /** Runs `fn` within the read pool's budget (503 DATABASE_BUSY when none came free in time). */
    onReadPool<T>(fn: (pool: DatabasePool) => Promise<T>): Promise<T>;
    /** The pools' and the users' budgets, for /healthz. */
    gates(): { name: string; size: number; inUse: number; waiting: number }[];
    visitorRole: string;
    /** This instance's id: its writes' announcements carry it, and it skips exactly those (plugins/live.ts). */
    instanceId: string;
    /** Registers a hook for every committed write of a request (see asCaller). */
    onCommittedWrite(hook: CommitHook): void;
    /**
     * Runs `fn` as `userId` in one REPEATABLE READ, READ ONLY transaction on
     * the primary's read pool (a long read: the export).
     */
    snapshotAs<T>(userId: number, fn: (tx: Tx) => Promise<T>): Promise<T>;
    /** Chooses the replica or the primary for each read view (src/db/replicas.ts). */
    reads: ReadRouter;
  }
  interface FastifyRequest {
    /** The authenticated user's id; set by the auth plugin, null when anonymous. */
    userId: number | null;
    /**
     * One transaction as the authenticated caller (RLS applies); `me` is the
     * caller's id. In a request that may write (any method but GET/HEAD),
     * the transaction ends by reading which users' views its triggers
     * recorded as changed, and once it has committed every
     * onCommittedWrite hook runs with them, before the answer: the writer
     * sees its own write at once, whichever route wrote and however.
     */
    asCaller<T>(fn: (tx: Tx, me: number) => Promise<T>): Promise<T>;
    /**
     * asCaller for a read-only view: on a read replica that has replayed
     * every write the caller must see (the caller's own, and those that
     * changed the caller's views), else on the primary; a read the replica
     * fails to answer is repeated on the primary. Without replicas, asCaller.
     */
    readAsCaller<T>(fn: (tx: Tx, me: number) => Promise<T>, limits?: { statementTimeoutMs?: number }): Promise<T>;
    /**
     * A read view that is one statement setting the caller itself (such as
     * app_public.conversation_page): run on the pool readAsCaller would
     * use, outside a transaction — one round trip instead of four.
     */
    readView<T>(fn: (connection: DatabasePool, caller: Caller) => Promise<T>): Promise<T>;
    /**
     * A write that is one statement setting the caller and the request's
     * settings itself (such as app_public.read_conversation): on the
     * primary, outside a transaction — one round trip instead of five. `fn`
     * answers its result and what its triggers recorded; then everything
     * after a committed write happens as for asCaller.
     */
    writeStatement<T>(fn: (connection: DatabasePool, caller: WriteCaller) => Promise<{ result: T; change: Change | null }>): Promise<T>;
  }
}

type DbOptions = {
  pool: DatabasePool;
  /** The primary's pool for reads (views, stream catch-ups, session lookups); default: `pool`. */
  readPool?: DatabasePool;
  visitorRole: string;
  replicas?: readonly ReplicaSource[];
  replicaMaxLagMs?: number;
  replicaCheckMs?: number;
  /** How long a call waits for a free connection (each pool's gate is its size) before 503. */
  acquireTimeoutMs?: number;
  /** lock_timeout of a writing request's transaction (0: none). */
  lockTimeoutMs?: number;
  /** Database calls one user may have in flight at once (the rest wait their turn). */
  userMaxConcurrent?: number;
  /** This instance's id, in every announcement its writes make (default: host, pid, random). */
  instanceId?: string;
};

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function dbPlugin(app: FastifyInstance, options: DbOptions): Promise<void> {
  const hooks: CommitHook[] = [];
  const acquireMs = options.acquireTimeoutMs ?? 2000;
  const readPool = options.readPool ?? options.pool;
  // One gate per pool, the size of the pool: a call that finds every
  // connection busy waits its turn here, at most acquireMs, then 503.
  const gateOf = (name: string, pool: DatabasePool) =>
    // Slonik's default size, 10, when the pool was made without one.
    new Gate(name, pool.configuration.maximumPoolSize ?? 10, acquireMs, poolBusy(name, acquireMs));
  const writeGate = gateOf('primary', options.pool);
  const readGate = readPool === options.pool ? writeGate : gateOf('primary-reads', readPool);
  // One gate per user with calls in flight: one user's requests hold at
  // most userMaxConcurrent connections; more wait (and queue at most 32).
  const userMax = options.userMaxConcurrent ?? 4;
  const userGates = new Map<number, Gate>();
  const asThisUser = async <T>(me: number, fn: () => Promise<T>): Promise<T> => {
    let gate = userGates.get(me);
    if (!gate) {
      gate = new Gate(`user ${me}`, userMax, acquireMs, () =>
        databaseBusy('your earlier requests still hold the database; try again shortly'),
        32, () => rateLimited('too many of your requests at once', 1));
      userGates.set(me, gate);
    }
    try {
      return await gate.run(fn);
    } finally {
      if (gate.idle) userGates.delete(me);
    }
  };
  const lockMs = options.lockTimeoutMs ?? 0;
  const instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  app.decorate('instanceId', instanceId);
  app.decorate('pool', options.pool);
  app.decorate('readPool', readPool);
  app.decorate('onReadPool', <T>(fn: (pool: DatabasePool) => Promise<T>) => readGate.run(() => fn(readPool)));
  app.decorate('gates', () => {
    const gates = readGate === writeGate ? [writeGate] : [writeGate, readGate];
    return gates.map((g) => ({ name: g.name, size: g.max, inUse: g.inUse, waiting: g.waiting }));
  });
  app.decorate('visitorRole', options.visitorRole);
  app.decorate('snapshotAs', <T>(userId: number, fn: (tx: Tx) => Promise<T>) =>
    readGate.run(() => asUser(readPool, options.visitorRole, userId, fn, { lockTimeoutMs: lockMs, snapshot: true })));
  app.decorate('onCommittedWrite', (hook: CommitHook) => void hooks.push(hook));
  const reads = new ReadRouter({
    primary: options.pool,
    replicas: options.replicas ?? [],
    maxLagMs: options.replicaMaxLagMs ?? 5000,
    checkMs: options.replicaCheckMs ?? 100,
    log: app.log,
  });
  app.decorate('reads', reads);
  await reads.start();
  app.addHook('onClose', () => reads.stop());
  app.decorateRequest('userId', null);
  const callerOf = (request: FastifyRequest): number => {
    if (!request.userId) throw unauthorized();
    return request.userId;
  };
  app.decorateRequest('asCaller', async function <T>(this: FastifyRequest, fn: (tx: Tx, me: number) => Promise<T>) {
    const me = callerOf(this);
    if (READS.has(this.method)) {
      return asThisUser(me, () => readGate.run(() => asUser(readPool, options.visitorRole, me, (tx) => fn(tx, me), { lockTimeoutMs: lockMs, requestId: this.id })));
    }
    const { result, change } = await asThisUser(me, () =>
      writeGate.run(() =>
        asUser(options.pool, options.visitorRole, me, async (tx) => {
          const value = await fn(tx, me);
          return { result: value, change: await changeOfTransaction(tx) };
        }, { lockTimeoutMs: lockMs, instance: instanceId, requestId: this.id }),
      ),
    );
    await committed(me, change);
    return result;
  });
  app.decorateRequest('writeStatement', async function <T>(
    this: FastifyRequest,
    fn: (connection: DatabasePool, caller: WriteCaller) => Promise<{ result: T; change: Change | null }>,
  ) {
    const me = callerOf(this);
    const caller = { id: me, role: options.visitorRole, requestId: this.id, lockTimeoutMs: lockMs, instance: instanceId };
    const { result, change } = await asThisUser(me, () => writeGate.run(() => fn(options.pool, caller)));
    await committed(me, change);
    return result;
  });

  /** After a write committed: replica routing, then every commit hook (cache eviction, sessions). */
  async function committed(me: number, change: Change | null): Promise<void> {
    // Before the hooks and the answer: the caller's next read, and those of
    // everyone whose views changed, must not come from a replica without it.
    reads.wrote(change ? [me, ...change.users] : [me]);
    if (change) for (const hook of hooks) await hook(change);
  }

  /**
   * Runs a read on a replica that may serve `me`, else on the primary; a
   * replica that fails to answer is marked down and the read repeated on
   * the primary, and so is a read that found nothing there.
   */
  async function readAs<T>(me: number, read: (pool: DatabasePool) => Promise<T>): Promise<T> {
    return asThisUser(me, async () => {
      const replica = reads.replicaFor(me);
      if (replica) {
        try {
          const result = await read(replica.pool);
          // Nothing found (a 404 to be) may only mean "not replayed yet":
          // a user registered or a message sent a moment ago by someone
          // else, which the caller's own floor does not cover. The
          // primary decides.
          if (result === null || result === undefined) return readGate.run(() => read(readPool));
          reads.served(replica);
          return result;
        } catch (error) {
          if (!replicaCannotServe(error)) throw error;
          reads.failed(replica, error);
        }
      }
      return readGate.run(() => read(readPool));
    });
  }
  app.decorateRequest('readAsCaller', async function <T>(
    this: FastifyRequest,
    fn: (tx: Tx, me: number) => Promise<T>,
    limits: Pick<TxSettings, 'statementTimeoutMs'> = {},
  ) {
    const me = callerOf(this);
    return readAs(me, (pool) => asUser(pool, options.visitorRole, me, (tx) => fn(tx, me), { ...limits, lockTimeoutMs: lockMs, requestId: this.id }));
  });
  app.decorateRequest('readView', async function <T>(this: FastifyRequest, fn: (connection: DatabasePool, caller: Caller) => Promise<T>) {
    const me = callerOf(this);
    return readAs(me, (pool) => fn(pool, { id: me, role: options.visitorRole, requestId: this.id }));
  });
}

export default fp(dbPlugin, { name: 'db', fastify: '5.x' });
