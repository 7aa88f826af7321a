import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Config } from '../config';

export type PruneSettings = Pick<
  Config,
  'LIVE_EVENTS_RETENTION' | 'NOTIFICATIONS_RETENTION' | 'AUDIT_RETENTION' | 'PRUNE_BATCH_SIZE'
>;

const runRow = z.object({
  id: z.number(),
  sessions: z.number(),
  idempotencyKeys: z.number(),
  liveEvents: z.number(),
  notifications: z.number(),
  deletedAccounts: z.number(),
  pruneRuns: z.number(),
  ms: z.number(),
});
export type PruneRun = z.infer<typeof runRow>;

/**
 * One retention run: app_private.prune (migration 000014) deletes in
 * batches, each committed on its own, and records the run in
 * app_private.prune_runs, whose row (by the id the procedure answers) this
 * returns. `connection` must be a
 * pool (or a connection outside any transaction): a procedure that COMMITs
 * cannot run inside a transaction block. The connecting role, not the
 * request role: the tables it prunes are not the visitor's to delete.
 */
export async function prune(connection: CommonQueryMethods, settings: PruneSettings): Promise<PruneRun> {
  const runId = await connection.oneFirst(sql.type(z.object({ run_id: z.number() }))`
    call app_private.prune(live_events_retention => ${settings.LIVE_EVENTS_RETENTION}::interval,
                           notifications_retention => ${settings.NOTIFICATIONS_RETENTION}::interval,
                           audit_retention => ${settings.AUDIT_RETENTION}::interval,
                           batch_size => ${settings.PRUNE_BATCH_SIZE}::integer)
  `);
  return connection.one(sql.type(runRow)`
    select id, sessions, idempotency_keys as "idempotencyKeys", live_events as "liveEvents", notifications,
           deleted_accounts as "deletedAccounts", prune_runs as "pruneRuns",
           round(extract(epoch from finished_at - started_at) * 1000)::int as ms
      from app_private.prune_runs where id = ${runId}
  `);
}
