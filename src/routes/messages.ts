import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError, notFound } from '../errors';
import {
  buildForest,
  editMessage,
  getHistory,
  getMessage,
  getThreadPage,
  getUnreadInbox,
  historyVersion,
  inboxRow,
  markMessageRead,
  sendMessage,
  threadRow,
  type ThreadNode,
} from '../queries/messages';
import { messageRow } from '../queries/schemas';
import { bodyId, content, errors, idParam, idParams, limitParam, pageQuery } from './inputs';

const threadNode: z.ZodType<ThreadNode> = threadRow.extend({ replies: z.lazy(() => z.array(threadNode)) });

/** Message routes; registered behind app.authenticate. */
const routes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'Send a message, or reply to one',
        description:
          'A reply needs only parentMessageId: it goes to the other participant of the parent. ' +
          'receiverId that disagrees with the parent\'s conversation is a 422.',
        body: z
          .object({ receiverId: bodyId.optional(), parentMessageId: bodyId.optional(), content })
          .strict()
          .refine((b) => b.receiverId !== undefined || b.parentMessageId !== undefined, {
            message: 'receiverId or parentMessageId is required',
            path: ['receiverId'],
          }),
        response: { 201: messageRow, ...errors(400, 401, 404, 422) },
      },
    },
    async (request, reply) => {
      const message = await request.asCaller((tx, me) => sendMessage(tx, me, request.body));
      if (!message) throw notFound('parent message');
      await app.viewCache.evictUsers([message.senderId, message.receiverId]);
      return reply.code(201).send(message);
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
    async (request) => {
      const message = await request.asCaller((tx, me) => getMessage(tx, me, request.params.id));
      if (!message) throw notFound('message');
      return message;
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
      await app.viewCache.evictUsers([message.senderId, message.receiverId]);
      return message;
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
    async (request) => {
      const versions = await request.asCaller((tx, me) => getHistory(tx, me, request.params.id));
      if (!versions) throw notFound('message');
      return { messageId: request.params.id, versions };
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
    async (request) => {
      const page = await request.asCaller((tx, me) => getThreadPage(tx, me, request.params.id, request.query));
      if (page.outcome === 'not-found') throw notFound('message');
      if (page.outcome === 'bad-cursor') {
        throw new HttpError(400, 'INVALID_CURSOR', '`after` must be a message of this thread (a nextCursor it returned)');
      }
      const tops = buildForest(page.rows);
      const root = tops[0]?.id === page.rootId ? tops.shift()! : null;
      return { rootId: page.rootId, root, continued: tops, nextCursor: page.nextCursor };
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
      const participants = await request.asCaller((tx, me) => markMessageRead(tx, me, request.params.id));
      await app.viewCache.evictUsers(participants);
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
    async (request) => request.asCaller((tx, me) => getUnreadInbox(tx, me, request.query)),
  );
};

export default routes;

