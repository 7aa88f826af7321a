import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../http-errors';
import { conversationRow, getConversationList, getConversationPage, markConversationRead } from '../queries/conversations';
import { messageRow } from '../queries/schemas';
import { errors, idParam, pageQuery } from './inputs';

const conversationList = z.object({ conversations: z.array(conversationRow), nextCursor: z.number().int().nullable() });
const conversationMessages = z.object({ messages: z.array(messageRow), nextCursor: z.number().int().nullable() });
const partnerParams = z.object({ userId: idParam }).strict();


/** Conversation views, cached 60 s per user and URL; behind app.authenticate. */
const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: 'The caller\'s direct and group conversations, most recent first (cached 60 s, per user)',
        description: 'Answers 304 to a matching If-None-Match. Extension: ?limit and ?before (a last-message id) paginate.',
        querystring: pageQuery,
        response: { 200: conversationList, 304: z.null(), ...errors(400, 401) },
      },
    },
    async (request, reply) =>
      // JSON text from PostgreSQL, in one statement (queries/conversations.ts).
      app.viewCache.serve(request, reply, () => request.readView((pool, caller) => getConversationList(pool, caller, request.query))),
  );

  app.get(
    '/conversations/:userId/messages',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Messages between the caller and one user, newest first (cached 60 s, per user)',
        params: partnerParams,
        querystring: pageQuery,
        response: { 200: conversationMessages, 304: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) =>
      app.viewCache.serve(request, reply, async () => {
        // JSON text from PostgreSQL, in one statement (queries/conversations.ts).
        const page = await request.readView((pool, caller) => getConversationPage(pool, caller, request.params.userId, request.query));
        if (page === null) throw notFound('user');
        return page;
      }),
  );

  app.post(
    '/conversations/:userId/read',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Mark every message from that user to the caller read',
        params: partnerParams,
        response: { 204: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const other = request.params.userId;
      // One statement (queries/conversations.ts); eviction as after any write.
      const marked = await request.writeStatement((pool, caller) => markConversationRead(pool, caller, other));
      if (marked === null) throw notFound('user');
      return reply.code(204).send(null);
    },
  );
};

export default routes;
