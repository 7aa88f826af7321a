import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashToken } from '../auth/tokens';
import { HttpError } from '../http-errors';
import { StreamClient } from '../events/user-feed';
import { STREAM_EVENT_TYPES, streamStart, type StreamEventType } from '../queries/notifications';
import { errors } from './inputs';

export type StreamRouteOptions = { maxBufferedBytes: number };

/** `s42` (a cursor), or a bare notification id from before the cursor existed. */
const lastEventId = z
  .string()
  .regex(/^s?(0|[1-9][0-9]{0,14})$/, 'must be an event id this stream sent (s<number>)')
  .transform((v) => ({ legacy: !v.startsWith('s'), value: Number(v.replace(/^s/, '')) }));

/** ?types=notification,message.read: a comma-separated subset of the event types. */
const typesParam = z
  .string()
  .max(200)
  .transform((v) => v.split(','))
  .pipe(z.array(z.enum(STREAM_EVENT_TYPES)).min(1))
  .transform((list) => new Set<StreamEventType>(list));

const tooManyStreams = (max: number) =>
  new HttpError(429, 'TOO_MANY_STREAMS', `at most ${max} live streams per user may be open on one server; close one first`);

/** GET /notifications/stream (server-sent events); behind app.authenticate. */
const routes: FastifyPluginAsyncZod<StreamRouteOptions> = async (app, options) => {
  const { maxStreamsPerUser } = app.live;
  app.get(
    '/notifications/stream',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Live notifications and conversation events as server-sent events',
        description:
          'Each notification is an event `notification` whose data is the notification JSON. The ' +
          'conversations\' live events come on the same stream: `message.created` (to both participants), ' +
          '`message.edited` (to both, with the new content and edit time), `message.deleted` (to both: the message ' +
          'was unsent; content null, deletedAt set) and `message.read` (a read receipt, to ' +
          'the sender); a group message\'s go to its members. `account.deleted` `{userId}` tells a direct partner and ' +
          'the members of a group that an account was deleted with its messages (reload the view; a conversation with it is gone). ' +
          'The message events\' data is `{count, messages}`: one event per recipient, type and SQL statement, ' +
          'with the first 100 messages of that statement (full messages; `{id, receiverId, readAt}` for reads) — ' +
          'when `count` is larger, reload the view. `?types=notification` (a comma-separated list) asks for ' +
          'those types only. Every event\'s id is ' +
          '`s<seq>`: `seq` is the receiver\'s delivery cursor, which increases in commit order, so replaying ' +
          '"everything after it" can neither skip nor repeat an event. Send `Last-Event-ID` to replay ' +
          'everything after that cursor from the database (EventSource does this by itself on reconnect); ' +
          'without it the stream starts with the next notification. A bare number (a notification id, as sent ' +
          'before the cursor existed) resumes after that notification; if it names none of the caller\'s, the ' +
          'stream sends an event `reset` and starts with the next one, so the client knows to reload its list; ' +
          'the same happens when events after the given cursor were removed by the retention job ' +
          '(LIVE_EVENTS_RETENTION, NOTIFICATIONS_RETENTION). An event whose messages were all deleted since is ' +
          'not sent (its messages are built when it is sent, so a deleted message is never replayed). ' +
          `A comment line is sent every heartbeat (15 s). At most ${maxStreamsPerUser} streams per user ` +
          'may be open on one server: one more is refused with 429 TOO_MANY_STREAMS and Retry-After. Browsers ' +
          'authenticate with the session cookie (EventSource cannot set headers); never put a token in the URL.',
        headers: z.object({ 'last-event-id': lastEventId.optional() }),
        querystring: z.object({ types: typesParam.optional() }).strict(),
        response: { 200: z.string().describe('text/event-stream'), ...errors(400, 401, 429) },
      },
    },
    async (request, reply) => {
      // The heartbeat re-checks this session (logout ends the stream).
      const token = request.sessionToken;
      const me = request.userId;
      if (token === null || me === null) throw new HttpError(401, 'UNAUTHORIZED', 'authentication required');
      const from = request.headers['last-event-id'];
      // One query, on the primary, as every catch-up (plugins/live.ts): a replica
      // behind would start the cursor before events it has not replayed.
      const start = await request.asCaller((tx) => streamStart(tx, me, from?.legacy ? from.value : null));
      // The cursor to resume from: the one the stream sent, or a legacy
      // id's seq. None (a fresh stream) starts at the newest. One that
      // names nothing of the caller's, or lies below what the retention
      // job pruned, restarts at the newest with a `reset`, never silently.
      const resumeFrom = from ? (from.legacy ? start.legacy : from.value) : start.latest;
      const reset = resumeFrom === null || resumeFrom < start.horizon;
      const cursor = reset ? start.latest : resumeFrom;
      // Checked after the last await, so two concurrent opens cannot both pass.
      if (!app.live.hasRoom(me)) {
        reply.header('retry-after', '30');
        throw tooManyStreams(maxStreamsPerUser);
      }

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

      const client = new StreamClient(res, cursor, {
        maxBufferedBytes: options.maxBufferedBytes,
        types: request.query.types,
        onDrop: (reason) => {
          request.log.info({ reason }, 'notification stream dropped');
          res.destroy();
        },
      });
      if (reset) {
        client.event('reset', {
          reason: resumeFrom === null
            ? 'unknown Last-Event-ID; reload the notification list'
            : 'events after Last-Event-ID were pruned (retention); reload the views',
        });
      }
      const entry = { userId: me, tokenHash: hashToken(token), client, end: () => res.end() };
      res.on('close', () => {
        client.close();
        app.live.remove(entry);
      });
      // The live plugin's feed replays what the client missed (nothing, for
      // a fresh stream), then sends what comes; its heartbeat re-checks the
      // session.
      app.live.add(entry);
    },
  );
};

export default routes;
