import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../http-errors';
import { getNotificationsJson, markAllNotificationsRead, markNotificationRead, notificationRow } from '../queries/notifications';
import { errors, idParams, pageQuery } from './inputs';

/** Notification routes; behind app.authenticate. */
const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary: 'The caller\'s notifications, newest first; ?unread=true for unread only',
        querystring: pageQuery.extend({ unread: z.enum(['true', 'false']).optional() }).strict(),
        response: {
          200: z.object({
            notifications: z.array(notificationRow),
            unreadCount: z.number().int(),
            nextCursor: z.number().int().nullable(),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (request, reply) => {
      const { unread, ...page } = request.query;
      // JSON text from PostgreSQL, in one statement (queries/notifications.ts).
      return reply.sendJson(await request.readView((pool, caller) => getNotificationsJson(pool, caller, { ...page, unreadOnly: unread === 'true' })));
    },
  );

  app.post(
    '/notifications/read-all',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Mark all of the caller\'s notifications read',
        response: { 204: z.null(), ...errors(401) },
      },
    },
    async (request, reply) => {
      await request.asCaller((tx, me) => markAllNotificationsRead(tx, me));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/notifications/:id/read',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Mark one notification read',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const marked = await request.asCaller((tx, me) => markNotificationRead(tx, me, request.params.id));
      if (!marked) throw notFound('notification');
      return reply.code(204).send(null);
    },
  );
};

export default routes;
