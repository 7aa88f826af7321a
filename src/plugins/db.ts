import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { DatabasePool } from 'slonik';
import { asUser, type TransactionSettings, type Tx } from '../db/transaction';
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
     * `settings`: transaction-local settings the query needs (TransactionSettings).
     */
    asCaller<T>(fn: (tx: Tx, me: number) => Promise<T>, settings?: TransactionSettings): Promise<T>;
  }
}

type DbOptions = { pool: DatabasePool; visitorRole: string };

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

async function dbPlugin(app: FastifyInstance, options: DbOptions): Promise<void> {
  const hooks: CommitHook[] = [];
  app.decorate('pool', options.pool);
  app.decorate('visitorRole', options.visitorRole);
  app.decorate('onCommittedWrite', (hook: CommitHook) => void hooks.push(hook));
  app.decorateRequest('userId', null);
  app.decorateRequest('asCaller', async function <T>(
    this: FastifyRequest,
    fn: (tx: Tx, me: number) => Promise<T>,
    settings?: TransactionSettings,
  ) {
    const me = this.userId;
    if (!me) throw unauthorized();
    if (READS.has(this.method)) return asUser(options.pool, options.visitorRole, me, (tx) => fn(tx, me), settings);
    let change: Change | null = null;
    const result = await asUser(options.pool, options.visitorRole, me, async (tx) => {
      const value = await fn(tx, me);
      change = await changeOfTransaction(tx);
      return value;
    }, settings);
    if (change) for (const hook of hooks) await hook(change);
    return result;
  });
}

export default fp(dbPlugin, { name: 'db', fastify: '5.x' });
