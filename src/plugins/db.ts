import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { DatabasePool } from 'slonik';
import { asUser, type Tx } from '../db/transaction';
import { unauthorized } from '../errors';

declare module 'fastify' {
  interface FastifyInstance {
    pool: DatabasePool;
    visitorRole: string;
  }
  interface FastifyRequest {
    /** The authenticated user's id; set by the auth plugin, null when anonymous. */
    userId: number | null;
    /** One transaction as the authenticated caller (RLS applies); `me` is the caller's id. */
    asCaller<T>(fn: (tx: Tx, me: number) => Promise<T>): Promise<T>;
  }
}

type DbOptions = { pool: DatabasePool; visitorRole: string };

async function dbPlugin(app: FastifyInstance, options: DbOptions): Promise<void> {
  app.decorate('pool', options.pool);
  app.decorate('visitorRole', options.visitorRole);
  app.decorateRequest('userId', null);
  app.decorateRequest('asCaller', function <T>(this: FastifyRequest, fn: (tx: Tx, me: number) => Promise<T>) {
    const me = this.userId;
    if (!me) throw unauthorized();
    return asUser(options.pool, options.visitorRole, me, (tx) => fn(tx, me));
  });
}

export default fp(dbPlugin, { name: 'db' });
