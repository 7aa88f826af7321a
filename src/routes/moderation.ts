import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden } from '../http-errors';
import { isModerator, openReports, queuedReportRow, reportRow, resolveReport } from '../queries/reports';
import { errors, idParam, idParams, limitParam } from './inputs';

/** The moderators' queue and their actions (docs/safety.md); behind app.authenticate. */
const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/moderation/reports',
    {
      schema: {
        tags: ['moderation'],
        summary: 'Open reports, oldest first (moderators only)',
        description: 'Each with the words as they were when reported (null once the message was unsent), the reporter and the reported user. `after` pages on by report id.',
        querystring: z.object({ limit: limitParam(100, 50), after: idParam.optional() }).strict(),
        response: { 200: z.object({ reports: z.array(queuedReportRow) }), ...errors(400, 401, 403) },
      },
    },
    async (request) =>
      request.readAsCaller(async (tx, me) => {
        if (!(await isModerator(tx, me))) throw forbidden('only moderators see the reports');
        return { reports: [...(await openReports(tx, request.query))] };
      }),
  );

  app.post(
    '/moderation/reports/:id/resolve',
    {
      schema: {
        tags: ['moderation'],
        summary: 'Resolve an open report (moderators only)',
        description:
          '`dismiss`: nothing else happens. `delete_message`: the message is unsent (a tombstone; every copy of its ' +
          'words goes). `suspend_user`: the sender can no longer sign in or send, and their sessions and live streams ' +
          'end on every instance. Every resolution is audited (app_private.moderation_actions). A resolved report: 409.',
        params: idParams,
        body: z.object({ action: z.enum(['dismiss', 'delete_message', 'suspend_user']) }).strict(),
        response: { 200: reportRow, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => request.asCaller((tx) => resolveReport(tx, request.params.id, request.body.action)),
  );
};

export default routes;
