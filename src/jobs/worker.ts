import { Logger, run, runMigrations, type Runner } from 'graphile-worker';
import type { DatabasePool } from 'slonik';
import { prune, type PruneRun, type PruneSettings } from './prune';

/**
 * The service's scheduled jobs, on graphile-worker (the Graphile family's
 * PostgreSQL job queue; 0.17.3 is the newest release that supports Node
 * 20, 0.18 needs Node 22). Chosen over pg_cron: pg_cron must be preloaded
 * into the server (shared_preload_libraries, a restart, a superuser), which
 * the embedded database, PgBouncer-fronted and managed servers do not all
 * allow; graphile-worker needs only its own schema and runs in the service,
 * and with several instances each cron tick starts the job once
 * (its known_crontabs table), and a job that fails is retried.
 *
 * The worker connects directly (MIGRATE_DATABASE_URL or DATABASE_URL): it
 * LISTENs for new jobs and the prune deletes from app_private.
 */

export const PRUNE_TASK = 'signalbox_prune';

/** graphile-worker's own schema, installed with the service's migrations (under their lock). */
export async function migrateWorkerSchema(connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger: silent });
}

const silent = new Logger(() => () => {});

type Log = { [level in 'info' | 'warn' | 'error']: (obj: object, msg: string) => void };

/** graphile-worker's log lines through the service's logger. */
function workerLogger(log: Log): Logger {
  return new Logger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...meta };
    if (level === 'error') log.error(fields, `worker: ${message}`);
    else if (level === 'warning') log.warn(fields, `worker: ${message}`);
    else if (level === 'info') log.info(fields, `worker: ${message}`);
  });
}

export type Worker = { stop(): Promise<void>; runner: Runner };

/**
 * Starts the worker with the prune on `schedule` (five crontab fields), or
 * returns null for `off`. `pool` runs the prune (a pool on the same direct
 * URL: CALL must not be inside a transaction block).
 */
export async function startWorker(options: {
  connectionString: string;
  pool: DatabasePool;
  schedule: string;
  settings: PruneSettings;
  log: Log;
  /** Each run's result, or null when it failed (the metrics count both). */
  onPrune?: (run: PruneRun | null) => void;
}): Promise<Worker | null> {
  if (options.schedule === 'off') return null;
  const runner = await run({
    connectionString: options.connectionString,
    concurrency: 1,
    maxPoolSize: 2,
    // The service owns SIGTERM (close-with-grace stops the worker).
    noHandleSignals: true,
    logger: workerLogger(options.log),
    taskList: {
      [PRUNE_TASK]: async () => {
        let result: PruneRun;
        try {
          result = await prune(options.pool, options.settings);
        } catch (error) {
          options.onPrune?.(null);
          throw error;
        }
        options.log.info({ prune: result }, 'retention prune done');
        options.onPrune?.(result);
      },
    },
    // ?max=1: a failed prune is not retried by the queue, the next tick runs it again.
    crontab: `${options.schedule} ${PRUNE_TASK} ?max=1`,
  });
  return { runner, stop: () => runner.stop() };
}
