import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { DatabasePool } from 'slonik';
import { replicaCannotServe } from '../db/errors';
import { ReadRouter, type ReplicaSource } from '../db/replicas';
import { asUser, type Caller, type Tx } from '../db/transaction';
import { unauthorized } from '../http-errors';
import { changeOfTransaction, type Change } from '../queries/changes';

/** Runs after a writing request's transaction committed, before the answer (cache eviction, echo bookkeeping). */
export type CommitHook = (change: Change) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    pool: DatabasePool;
    visitorRole: string;
    /** Registers a hook for every committed write of a request (see asCaller). */
    onCommittedWrite(hook: CommitHook): void;
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
    readAsCaller<T>(fn: (tx: Tx, me: number) => Promise<T>): Promise<T>;
    /**
     * A read view that is one statement setting the caller itself (such as
     * app_private.conversation_page): run on the pool readAsCaller would
     * use, outside a transaction — one round trip instead of four.
     */
    readView<T>(fn: (connection: DatabasePool, caller: Caller) => Promise<T>): Promise<T>;
  }
}

type DbOptions = {
  pool: DatabasePool;
  visitorRole: string;
  replicas?: readonly ReplicaSource[];
  replicaMaxLagMs?: number;
  replicaCheckMs?: number;
};

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function dbPlugin(app: FastifyInstance, options: DbOptions): Promise<void> {
  const hooks: CommitHook[] = [];
  app.decorate('pool', options.pool);
  app.decorate('visitorRole', options.visitorRole);
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
    if (READS.has(this.method)) return asUser(options.pool, options.visitorRole, me, (tx) => fn(tx, me));
    const { result, change } = await asUser(options.pool, options.visitorRole, me, async (tx) => {
      const value = await fn(tx, me);
      return { result: value, change: await changeOfTransaction(tx) };
    });
    // Before the hooks and the answer: the caller's next read, and those of
    // everyone whose views changed, must not come from a replica without it.
    reads.wrote(change ? [me, ...change.users] : [me]);
    if (change) for (const hook of hooks) await hook(change);
    return result;
  });

  /**
   * Runs a read on a replica that may serve `me`, else on the primary; a
   * replica that fails to answer is marked down and the read repeated on
   * the primary.
   */
  async function onReadPool<T>(me: number, read: (pool: DatabasePool) => Promise<T>): Promise<T> {
    const replica = reads.replicaFor(me);
    if (replica) {
      try {
        const result = await read(replica.pool);
        reads.served(replica);
        return result;
      } catch (error) {
        if (!replicaCannotServe(error)) throw error;
        reads.failed(replica, error);
      }
    }
    return read(options.pool);
  }
  app.decorateRequest('readAsCaller', async function <T>(this: FastifyRequest, fn: (tx: Tx, me: number) => Promise<T>) {
    const me = callerOf(this);
    return onReadPool(me, (pool) => asUser(pool, options.visitorRole, me, (tx) => fn(tx, me)));
  });
  app.decorateRequest('readView', async function <T>(this: FastifyRequest, fn: (connection: DatabasePool, caller: Caller) => Promise<T>) {
    const me = callerOf(this);
    return onReadPool(me, (pool) => fn(pool, { id: me, role: options.visitorRole }));
  });
}

export default fp(dbPlugin, { name: 'db', fastify: '5.x' });
