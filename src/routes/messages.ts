import crypto from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { minuteBudget } from '../budgets';
import { forbidden, HttpError, notFound, rateLimited } from '../http-errors';
import {
  editMessage,
  forestJson,
  getHistoryJson,
  getMessageJson,
  getThreadPage,
  getUnreadInboxJson,
  historyVersion,
  inboxRow,
  markMessageRead,
  sendMessage,
  unsendMessage,
  threadRow,
  type ThreadNode,
} from '../queries/messages';
import { reportMessage, reportRow } from '../queries/reports';
import { messageRow } from '../queries/schemas';
import { bodyId, content, errors, idParam, idParams, limitParam, pageQuery, reportReason } from './inputs';

/**
 * Thrown inside the send transaction to roll it back when a concurrent send
 * with the same Idempotency-Key committed first. The route tries once more
 * (which replays that send); should it happen again, it is a plain 409.
 */
class KeyTaken extends HttpError {
  constructor() {
    super(409, 'CONFLICT', 'a concurrent send holds this Idempotency-Key; retry');
  }
}

const threadNode: z.ZodType<ThreadNode> = threadRow.extend({ replies: z.lazy(() => z.array(threadNode)) });

export type MessageRouteOptions = { sendRateLimit: number };

/** Message routes; registered behind app.authenticate. */
const routes: FastifyPluginAsyncZod<MessageRouteOptions> = async (app, options) => {
  // The send budget: messages per user per minute, in the shared store
  // (Redis with CACHE_URL, else this instance; this instance's while Redis
  // is away). Checked after the body is validated, before any query: a
  // refused send costs nobody a connection. A retry with an
  // Idempotency-Key is a send like another here: after Retry-After it
  // answers the replay.
  const sends = minuteBudget(app, options.sendRateLimit, (request) => `send:${request.userId}`);
  const sendBudget = async (request: FastifyRequest) => {
    const wait = await sends.spend(request);
    if (wait !== null) throw rateLimited(`more than ${options.sendRateLimit} messages a minute; try again in ${wait} s`, wait, 'SEND_RATE_LIMITED');
  };

  app.post(
    '/messages',
    {
      preHandler: sendBudget,
      schema: {
        tags: ['messages'],
        summary: 'Send a message, or reply to one',
        description:
          'To a user (receiverId) or to a group the caller is in (groupId; 404 for any other group). ' +
          'A reply needs only parentMessageId: it goes to the parent\'s conversation (its group, or its other ' +
          'participant). receiverId or groupId that disagrees with the parent\'s conversation is a 422.\n\n' +
          'Idempotency-Key (1-255 visible ASCII characters) makes a retry safe: the key is stored with the ' +
          'message, in the same transaction. The same key with the same request within 24 hours answers 200 ' +
          'with the original message (header Idempotent-Replayed: true) and writes nothing; the same key with ' +
          'a different request is a 409 IDEMPOTENCY_KEY_REUSED. Use it when an answer may be lost (a 503 ' +
          'DATABASE_UNAVAILABLE, a dropped connection): the message may have been stored.',
        headers: z.object({
          'idempotency-key': z
            .string()
            .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
            .optional(),
        }),
        body: z
          .object({ receiverId: bodyId.optional(), groupId: bodyId.optional(), parentMessageId: bodyId.optional(), content })
          .strict()
          .refine((b) => b.receiverId !== undefined || b.groupId !== undefined || b.parentMessageId !== undefined, {
            message: 'receiverId, groupId or parentMessageId is required',
            path: ['receiverId'],
          })
          .refine((b) => b.receiverId === undefined || b.groupId === undefined, {
            message: 'a message goes to a receiver or to a group, not both',
            path: ['groupId'],
          }),
        response: { 201: messageRow, 200: messageRow, ...errors(400, 401, 404, 409, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const { receiverId, groupId, parentMessageId, content: text } = request.body;
      const once = key
        ? {
            key,
            // A group send hashes one more field; a direct send's hash is what it was before groups.
            requestHash: crypto
              .createHash('sha256')
              .update(JSON.stringify([receiverId ?? null, parentMessageId ?? null, text, ...(groupId ? [groupId] : [])]))
              .digest(),
          }
        : undefined;
      const send = () =>
        request.asCaller(async (tx, me) => {
          const result = await sendMessage(tx, me, request.body, once);
          // A concurrent send with this key committed first: roll back.
          if (result === 'key-taken') throw new KeyTaken();
          return result;
        });
      // The second try replays the send that won.
      const sent = await send().catch((error: unknown) => (error instanceof KeyTaken ? send() : Promise.reject(error)));
      if (!sent) throw notFound('parent message');
      if ('replay' in sent) {
        if (!sent.requestHash.equals(once!.requestHash)) {
          throw new HttpError(409, 'IDEMPOTENCY_KEY_REUSED', 'that Idempotency-Key was used for a different message');
        }
        return reply.code(200).header('Idempotent-Replayed', 'true').send(sent.replay);
      }
      return reply.code(201).send(sent);
    },
  );

  app.get(
    '/messages/:id',
    {
      schema: {
        tags: ['messages'],
        summary: 'One message the caller sent or received',
        params: idParams,
        response: { 200: messageRow, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      // JSON text from PostgreSQL, in one statement (queries/messages.ts).
      const message = await request.readView((pool, caller) => getMessageJson(pool, caller, request.params.id));
      if (message === null) throw notFound('message');
      return reply.sendJson(message);
    },
  );

  app.patch(
    '/messages/:id',
    {
      schema: {
        tags: ['messages'],
        summary: 'Edit a message (sender only); the old version goes to its history',
        params: idParams,
        body: z.object({ content }).strict(),
        response: { 200: messageRow, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const message = await request.asCaller((tx, me) => editMessage(tx, me, request.params.id, request.body.content));
      if (message === 'not-found') throw notFound('message');
      if (message === 'forbidden') throw forbidden('only the sender may edit a message');
      return message;
    },
  );

  app.delete(
    '/messages/:id',
    {
      schema: {
        tags: ['messages'],
        summary: 'Unsend a message (its sender)',
        description:
          'The message becomes a tombstone (content null, deletedAt set; replies stay attached) and every copy of its ' +
          'words goes in the same transaction: its history, its search entry, notification previews, report snapshots. ' +
          'Both participants (a group: its members) get `message.deleted` on their streams. Unsent already: 204. ' +
          'The receiver, or another member: 403.',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const outcome = await request.asCaller((tx, me) => unsendMessage(tx, me, request.params.id));
      if (outcome === 'not-found') throw notFound('message');
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/messages/:id/report',
    {
      schema: {
        tags: ['moderation'],
        summary: 'Report a message to the moderators (a participant or a member who can read it)',
        description: 'The report keeps the words as they are now; later edits do not change it. Once per message and reporter (409).',
        params: idParams,
        body: z.object({ reason: reportReason }).strict(),
        response: { 201: reportRow, ...errors(400, 401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const report = await request.asCaller((tx, me) => reportMessage(tx, me, request.params.id, request.body.reason));
      if (!report) throw notFound('message');
      return reply.code(201).send(report);
    },
  );

  app.get(
    '/messages/:id/history',
    {
      schema: {
        tags: ['messages'],
        summary: 'Every earlier version of a message, newest first',
        params: idParams,
        response: {
          200: z.object({ messageId: z.number().int(), versions: z.array(historyVersion) }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const history = await request.readView((pool, caller) => getHistoryJson(pool, caller, request.params.id));
      if (history === null) throw notFound('message');
      return reply.sendJson(history);
    },
  );

  app.get(
    '/messages/:id/thread',
    {
      schema: {
        tags: ['messages'],
        summary: 'The thread containing a message, a page at a time (one SQL query per page)',
        description:
          'Nodes come in (depth, id) order: every parent before its replies, siblings in sending order, at most ' +
          '`limit` per page (default 200, at most 1000). The first page holds the thread\'s root as `root`, with ' +
          'the replies on that page nested under it. Pass `nextCursor` as `after` for the next page: its nodes ' +
          'whose parent came on an earlier page are in `continued`, each with its on-page replies nested (its ' +
          '`parentMessageId` says where it belongs). `nextCursor` is null on the last page.',
        params: idParams,
        querystring: z
          .object({ limit: limitParam(1000, 200), after: idParam.optional() })
          .strict(),
        response: {
          200: z.object({
            rootId: z.number().int(),
            root: threadNode.nullable(),
            continued: z.array(threadNode),
            nextCursor: z.number().int().nullable(),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request, reply) => {
      const page = await request.readAsCaller((tx, me) => getThreadPage(tx, me, request.params.id, request.query));
      if (page.outcome === 'not-found') throw notFound('message');
      if (page.outcome === 'bad-cursor') {
        throw new HttpError(400, 'INVALID_CURSOR', '`after` must be a message of this thread (a nextCursor it returned)');
      }
      // The nodes' JSON comes from PostgreSQL; only the nesting is done here.
      const tops = forestJson(page.rows);
      const root = tops[0]?.id === page.rootId ? tops.shift()!.json : 'null';
      return reply.sendJson(
        `{"rootId":${page.rootId},"root":${root},"continued":[${tops.map((n) => n.json).join(',')}],"nextCursor":${page.nextCursor ?? 'null'}}`,
      );
    },
  );

  app.post(
    '/messages/:id/read',
    {
      schema: {
        tags: ['messages'],
        summary: 'Mark a received message read (receiver only)',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const outcome = await request.asCaller((tx, me) => markMessageRead(tx, me, request.params.id));
      if (outcome === 'not-found') throw notFound('message');
      if (outcome === 'forbidden') throw forbidden('only the receiver may mark a message read');
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/inbox/unread',
    {
      schema: {
        tags: ['inbox'],
        summary: 'Unread messages received by the caller, newest first',
        querystring: pageQuery,
        response: {
          200: z.object({ messages: z.array(inboxRow), unreadCount: z.number().int(), nextCursor: z.number().int().nullable() }),
          ...errors(400, 401),
        },
      },
    },
    async (request, reply) => reply.sendJson(await request.readView((pool, caller) => getUnreadInboxJson(pool, caller, request.query))),
  );
};

export default routes;

