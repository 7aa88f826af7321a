import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashToken } from '../auth/tokens';
import { asUser } from '../db/transaction';
import { NotificationStream } from '../events/notification-stream';
import { latestNotificationId, notificationsAfter } from '../queries/notifications';
import { errors } from './inputs';

export type StreamRouteOptions = { maxBufferedBytes: number };

/** GET /notifications/stream (server-sent events); behind app.authenticate. */
const routes: FastifyPluginAsyncZod<StreamRouteOptions> = async (app, options) => {
  app.get(
    '/notifications/stream',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Live notifications as server-sent events',
        description:
          'Each notification is an event `notification` whose id is the notification id and whose data is the ' +
          'notification JSON. Send `Last-Event-ID` to replay everything after that id from the database; without ' +
          'it the stream starts with the next notification. A comment line is sent every 15 s. Browsers ' +
          'authenticate with the session cookie (EventSource cannot set headers); never put a token in the URL.',
        headers: z.object({ 'last-event-id': z.string().regex(/^[0-9]{1,15}$/, 'must be a notification id').optional() }),
        response: { 200: z.string().describe('text/event-stream'), ...errors(400, 401) },
      },
    },
    async (request, reply) => {
      const me = request.userId!;
      const token = request.sessionToken!;
      const header = request.headers['last-event-id'];
      const lastId = header !== undefined ? Number(header) : await request.asCaller((tx) => latestNotificationId(tx, me));

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      // Reconnect after 2 s; EventSource then sends Last-Event-ID itself.
      res.write('retry: 2000\n\n');

      const entry = {
        userId: me,
        tokenHash: hashToken(token),
        stream: new NotificationStream({
          sink: res,
          lastId,
          maxBufferedBytes: options.maxBufferedBytes,
          fetch: (afterId, limit) =>
            asUser(app.pool, app.visitorRole, me, (tx) => notificationsAfter(tx, me, afterId, limit)),
          onError: (err) => request.log.warn({ err }, 'notification stream: catch-up failed; will retry'),
          onDrop: (reason) => {
            request.log.info({ reason }, 'notification stream dropped');
            res.destroy();
          },
        }),
        end: () => res.end(),
      };
      res.on('close', () => {
        entry.stream.close();
        app.live.remove(entry);
      });
      // The live plugin's heartbeat keeps it alive and re-checks its session.
      app.live.add(entry);
      // Replay what the client missed (or nothing, for a fresh stream).
      entry.stream.poke();
    },
  );
};

export default routes;
