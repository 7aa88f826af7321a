import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden, notFound } from '../http-errors';
import {
  addMember,
  createGroup,
  endMembership,
  getGroup,
  getGroupPage,
  groupRow,
  managesGroup,
  markGroupRead,
  renameGroup,
} from '../queries/groups';
import { messageRow } from '../queries/schemas';
import type { Tx } from '../db/transaction';
import { bodyId, displayName, errors, idParam, idParams, pageQuery } from './inputs';

/** A group's title: 1-100 characters after trimming, no NUL (the display name's rule). */
const title = displayName;
const memberParams = z.object({ id: idParam, userId: idParam }).strict();
const groupMessages = z.object({ messages: z.array(messageRow), nextCursor: z.number().int().nullable() });

/** The group as the caller sees it, or 404: non-members learn nothing, not even that it exists. */
async function visibleGroup(tx: Tx, me: number, id: number) {
  const group = await getGroup(tx, me, id);
  if (!group) throw notFound('group');
  return group;
}

/** The group, which the caller must manage (404 when they cannot see it, 403 when they may not manage it). */
async function managedGroup(tx: Tx, me: number, id: number) {
  const group = await visibleGroup(tx, me, id);
  if (!(await managesGroup(tx, me, id))) throw forbidden('only the group\'s owner may do that');
  return group;
}

/** Group conversations (docs/groups.md); behind app.authenticate. */
const routes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/groups',
    {
      schema: {
        tags: ['groups'],
        summary: 'Create a group; the caller is its owner',
        description:
          'memberIds (at most 999, the caller and duplicates ignored) join at once. An unknown user is a 404, ' +
          'one who has blocked the caller a 403 BLOCKED; nothing is created then.',
        body: z.object({ title, memberIds: z.array(bodyId).max(999).default([]) }).strict(),
        response: { 201: groupRow, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const group = await request.asCaller(async (tx, me) => {
        const id = await createGroup(tx, request.body.title, request.body.memberIds);
        return visibleGroup(tx, me, id);
      });
      return reply.code(201).send(group);
    },
  );

  app.get(
    '/groups/:id',
    {
      schema: {
        tags: ['groups'],
        summary: 'A group the caller is in, with its current members',
        params: idParams,
        response: { 200: groupRow, ...errors(400, 401, 404) },
      },
    },
    async (request) => request.readAsCaller((tx, me) => visibleGroup(tx, me, request.params.id)),
  );

  app.patch(
    '/groups/:id',
    {
      schema: {
        tags: ['groups'],
        summary: 'Rename a group (its owner)',
        params: idParams,
        body: z.object({ title }).strict(),
        response: { 200: groupRow, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) =>
      request.asCaller(async (tx, me) => {
        await managedGroup(tx, me, request.params.id);
        await renameGroup(tx, request.params.id, request.body.title);
        return visibleGroup(tx, me, request.params.id);
      }),
  );

  app.post(
    '/groups/:id/members',
    {
      schema: {
        tags: ['groups'],
        summary: 'Add a member (the group\'s owner); a current member already: nothing changes',
        description:
          'The new member sees the messages sent from now on, not the earlier ones. 404 for an unknown user, ' +
          '403 BLOCKED when they have blocked the caller, 422 GROUP_FULL past 1000 members.',
        params: idParams,
        body: z.object({ userId: bodyId }).strict(),
        response: { 204: z.null(), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      await request.asCaller(async (tx, me) => {
        await managedGroup(tx, me, request.params.id);
        await addMember(tx, request.params.id, request.body.userId);
      });
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/groups/:id/members/:userId',
    {
      schema: {
        tags: ['groups'],
        summary: 'Leave a group (yourself) or remove a member (its owner)',
        description:
          'The member keeps the messages of their time in the group and sees nothing sent after. When the last ' +
          'member leaves, the group and its messages are deleted.',
        params: memberParams,
        response: { 204: z.null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { id, userId } = request.params;
      await request.asCaller(async (tx, me) => {
        await (userId === me ? visibleGroup(tx, me, id) : managedGroup(tx, me, id));
        if (!(await endMembership(tx, id, userId))) throw notFound('member');
      });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/groups/:id/messages',
    {
      schema: {
        tags: ['groups'],
        summary: 'A group\'s messages the caller saw as a member, newest first (cached 60 s, per user)',
        description:
          '`before` and `nextCursor` are group positions (in commit order). A former member still reads the ' +
          'messages of their time in the group.',
        params: idParams,
        querystring: pageQuery,
        response: { 200: groupMessages, 304: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) =>
      app.viewCache.serve(request, reply, async () => {
        const page = await request.readView((pool, caller) => getGroupPage(pool, caller, request.params.id, request.query));
        if (page === null) throw notFound('group');
        return page;
      }),
  );

  app.post(
    '/groups/:id/read',
    {
      schema: {
        tags: ['groups'],
        summary: 'Move the caller\'s read position to the group\'s newest message',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const marked = await request.asCaller((tx, me) => markGroupRead(tx, me, request.params.id));
      if (!marked) throw notFound('group');
      return reply.code(204).send(null);
    },
  );
};

export default routes;
