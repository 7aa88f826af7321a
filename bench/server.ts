/**
 * The benchmark's server: the real application plus one extra route for
 * baseline (a), "the Django way": the application writes the notification
 * itself, in the same transaction, as a second round trip (and publishes
 * it with pg_notify so both paths do the same work). The benchmark disables
 * the notification trigger while it measures that route.
 */
import { sql } from 'slonik';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { buildApp } from '../src/app';
import { loadConfig } from '../src/config';
import { createDatabasePool, replicaSources } from '../src/db/pool';
import { sendMessage } from '../src/queries/messages';
import { messageRow } from '../src/queries/schemas';
import { bodyId, content } from '../src/routes/inputs';

const appSideNotification: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.authenticate);
  app.post(
    '/bench/messages-app-notify',
    { schema: { hide: true, body: z.object({ receiverId: bodyId, content }).strict(), response: { 201: messageRow } } },
    async (request, reply) => {
      const me = request.userId!;
      const message = await request.asCaller(async (tx) => {
        const m = (await sendMessage(tx, me, request.body))!;
        // The same delivery cursor as the trigger: the receiver's counter, locked to commit.
        await tx.query(sql.unsafe`
          with c as (
            insert into app_private.delivery_counters as c (user_id, last_seq) values (${m.receiverId}, 1)
            on conflict (user_id) do update set last_seq = c.last_seq + 1
            returning last_seq
          ), n as (
            insert into app_public.notifications (user_id, message_id, kind, seq)
            select ${m.receiverId}, ${m.id}, 'message', c.last_seq from c returning user_id
          )
          select pg_notify('signalbox_notifications', json_build_object('userId', user_id)::text) from n`);
        return m;
      });
      await app.viewCache.evictUsers([message.senderId, message.receiverId ?? message.senderId]);
      return reply.code(201).send(message);
    },
  );
};

async function main(): Promise<void> {
  const config = loadConfig();
  const poolOptions = { maximumPoolSize: config.DATABASE_POOL_SIZE, checkShapes: config.CHECK_SHAPES };
  const pool = await createDatabasePool(config.DATABASE_URL!, poolOptions);
  // As src/server.ts: through PgBouncer, LISTEN goes to the primary; reads to the replicas.
  const replicas = replicaSources(config.DATABASE_READ_URL, poolOptions);
  const app = await buildApp({
    config,
    pool,
    listenerUrl: config.LISTEN_DATABASE_URL ?? config.DATABASE_URL!,
    replicas,
    logger: false,
  });
  await app.register(appSideNotification);
  await app.listen({ host: '127.0.0.1', port: config.PORT });
  process.stdout.write('ready\n');
  const stop = async () => {
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
