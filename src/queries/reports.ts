import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { visibleTo } from './participants';

/**
 * Reports and moderation (migration 000021, docs/safety.md). The rules are
 * the database's: who may report (a reader of the message), the snapshot
 * (a trigger), who may resolve and what each action does
 * (app_public.resolve_report, audited in app_private.moderation_actions).
 */

export const reportRow = z.object({
  id: z.number().int(),
  messageId: z.number().int(),
  reason: z.string(),
  status: z.enum(['open', 'resolved']),
  action: z.enum(['dismiss', 'delete_message', 'suspend_user']).nullable(),
  createdAt: z.string(),
  resolvedAt: z.string().nullable(),
});
export type Report = z.infer<typeof reportRow>;

const reportColumns = sql.fragment`
  r.id, r.message_id as "messageId", r.reason, r.status, r.action, r.created_at as "createdAt", r.resolved_at as "resolvedAt"`;

/** The caller reports a message they can read; null when they cannot see it (the policy is the second wall). */
export async function reportMessage(connection: CommonQueryMethods, me: number, messageId: number, reason: string): Promise<Report | null> {
  return connection.maybeOne(sql.type(reportRow)`
    insert into app_public.reports as r (message_id, reporter_id, reason)
    select m.id, ${me}, ${reason} from app_public.messages m where m.id = ${messageId} and ${visibleTo(me)}
    returning ${reportColumns}
  `);
}

/** A report in the moderators' queue: the report, the words as reported, who reported whom. */
export const queuedReportRow = reportRow.extend({
  contentSnapshot: z.string().nullable(),
  reporter: z.object({ id: z.number().int(), username: z.string() }),
  reportedUser: z.object({ id: z.number().int(), username: z.string(), suspended: z.boolean() }),
  messageDeleted: z.boolean(),
});

/**
 * Open reports, oldest first, after a report id (moderators only: others
 * see only their own, and the route refuses them first). A report that
 * commits after a later id was read appears on the next read of the
 * queue's head: the queue is read from its start, not resumed for ever.
 */
export async function openReports(
  connection: CommonQueryMethods,
  page: { limit: number; after?: number | undefined },
): Promise<readonly z.infer<typeof queuedReportRow>[]> {
  return connection.any(sql.type(queuedReportRow)`
    select ${reportColumns}, r.content_snapshot as "contentSnapshot",
           json_build_object('id', a.id, 'username', a.username) as reporter,
           json_build_object('id', b.id, 'username', b.username, 'suspended', b.suspended_at is not null) as "reportedUser",
           -- The snapshot goes only when the message is unsent (a moderator
           -- need not be able to read the message itself).
           r.content_snapshot is null as "messageDeleted"
      from app_public.reports r
      join app_public.users a on a.id = r.reporter_id
      join app_public.users b on b.id = r.reported_user_id
     where r.status = 'open' and r.id > ${page.after ?? 0}
     order by r.id
     limit ${page.limit}
  `);
}

const moderatorRow = z.object({ moderator: z.boolean() });

/** Whether the caller is a moderator. */
export async function isModerator(connection: CommonQueryMethods, me: number): Promise<boolean> {
  return connection.oneFirst(sql.type(moderatorRow)`select app_public.is_moderator(${me}) as moderator`);
}

/** Resolves an open report as the caller (a moderator); the database refuses everyone else (42501) and a resolved report (SB012). */
export async function resolveReport(
  connection: CommonQueryMethods,
  id: number,
  action: 'dismiss' | 'delete_message' | 'suspend_user',
): Promise<Report> {
  return connection.one(sql.type(reportRow)`
    select ${reportColumns} from app_public.resolve_report(${id}, ${action}) r
  `);
}
