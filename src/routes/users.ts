import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Gate } from '../db/gate';
import { forbidden, HttpError, notFound, unauthorized } from '../http-errors';
import { SESSION_COOKIE } from '../plugins/auth';
import { blockRow, blockUser, listBlocks, unblockUser } from '../queries/blocks';
import { exportChunks } from '../queries/export';
import { userRow } from '../queries/schemas';
import { deleteAccount, callerPasswordHash, getMeJson, getUserByUsername, meRow } from '../queries/users';
import { errors, idParams, username } from './inputs';

/** The caller's id; these routes run behind app.authenticate, so there is one. */
function signedIn(request: FastifyRequest): number {
  if (request.userId === null) throw unauthorized();
  return request.userId;
}

/** Account routes for the signed-in caller; registered behind app.authenticate. */
export type UserRouteOptions = { exportMaxConcurrent: number };

const exportsBusy = () =>
  new HttpError(503, 'EXPORTS_BUSY', 'this server is streaming as many exports as it may; try again shortly', undefined, { 'Retry-After': '5' });

const routes: FastifyPluginAsyncZod<UserRouteOptions> = async (app, options) => {
  app.get(
    '/me',
    { schema: { tags: ['accounts'], summary: 'The signed-in user (and whether they moderate)', response: { 200: meRow, ...errors(401) } } },
    async (request, reply) => {
      // JSON text from PostgreSQL, in one statement (queries/users.ts).
      const user = await request.readView((pool, caller) => getMeJson(pool, caller));
      if (user === null) throw notFound('user');
      return reply.sendJson(user);
    },
  );

  app.delete(
    '/me',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Delete the account and everything that belongs to it',
        description: 'Messages, notifications, history and sessions go with it, in one transaction.',
        body: z.object({ password: z.string().min(1).max(256) }).strict(),
        response: { 204: z.null(), ...errors(400, 401, 403, 429, 503) },
      },
    },
    async (request, reply) => {
      const me = signedIn(request);
      const passwordHash = await request.readAsCaller((tx) => callerPasswordHash(tx));
      // Within the password budgets (a stolen token must not buy unlimited
      // guesses, nor unlimited argon2 work).
      if (!(await app.passwords.check(request, { userId: me }, passwordHash, request.body.password))) {
        throw forbidden('wrong password');
      }
      // Its conversations' views are evicted by the commit hook (plugins/db.ts).
      if (!(await request.asCaller((tx) => deleteAccount(tx, me)))) throw notFound('user');
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/users/:username',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Look a user up by username (case-insensitive)',
        params: z.object({ username }).strict(),
        response: { 200: userRow, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const user = await request.readAsCaller((tx) => getUserByUsername(tx, request.params.username));
      if (!user) throw notFound('user');
      return user;
    },
  );

  // Blocking: the rule is the database's (SB007, migration 000019); these
  // routes keep the caller's list.
  app.post(
    '/users/:id/block',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Block a user: their messages to you are refused (403 BLOCKED)',
        description:
          'Idempotent. The conversation so far stays readable to both; you may still write to them. ' +
          'They are not told, except by the refusal of their next send or edit to you.',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const me = signedIn(request);
      if (request.params.id === me) throw new HttpError(400, 'VALIDATION_ERROR', 'you cannot block yourself');
      if (!(await request.asCaller((tx) => blockUser(tx, me, request.params.id)))) throw notFound('user');
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/users/:id/block',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Unblock a user (idempotent)',
        params: idParams,
        response: { 204: z.null(), ...errors(400, 401) },
      },
    },
    async (request, reply) => {
      const me = signedIn(request);
      await request.asCaller((tx) => unblockUser(tx, me, request.params.id));
      return reply.code(204).send(null);
    },
  );

  // The export streams from one snapshot as the database answers and the
  // client reads (src/queries/export.ts): the service holds one FETCH's
  // page at a time. Each holds a read connection while it runs, so an
  // instance streams at most exportMaxConcurrent at once.
  const exports = new Gate('exports', options.exportMaxConcurrent, 0, exportsBusy, 0);
  app.get(
    '/me/export',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Everything of yours, as NDJSON from one consistent snapshot',
        description:
          'Lines of {"type": …}: account, user (each person you have a conversation with), message (every message ' +
          'you sent or received), history (earlier versions of your own messages), notification, block, and last ' +
          'end with the counts: a download without it was cut short. 503 EXPORTS_BUSY (Retry-After) when this ' +
          'server streams as many exports as it may.',
        produces: ['application/x-ndjson'],
        response: { 200: z.string().describe('NDJSON'), ...errors(401, 503) },
      },
    },
    async (request, reply) => {
      const me = signedIn(request);
      const out = new PassThrough();
      // The answer starts once the first line is in hand: an error before
      // it (the database busy or away) is an ordinary error answer.
      let started!: () => void;
      const first = new Promise<void>((resolve) => (started = resolve));
      // No queue: past the limit, 503 at once (the Gate's onFull).
      const work = exports.run(() =>
        app.snapshotAs(me, async (tx) => {
          for await (const chunk of exportChunks(tx, me)) {
            started();
            if (out.destroyed) return; // the client is gone: stop reading
            if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
          }
        }),
      );
      await Promise.race([first, work]);
      void work.then(
        () => out.end(),
        (error: unknown) => {
          request.log.warn({ err: error }, 'export cut short');
          out.destroy(error as Error);
        },
      );
      return reply
        .header('Content-Type', 'application/x-ndjson; charset=utf-8')
        .header('Content-Disposition', 'attachment; filename="signalbox-export.ndjson"')
        // A stream goes out as it is (the 200 schema documents it for
        // OpenAPI; Fastify serialises no stream), whatever the types say.
        .send(out as unknown as string);
    },
  );

  app.get(
    '/me/blocks',
    {
      schema: {
        tags: ['accounts'],
        summary: 'The users you have blocked, newest first',
        response: { 200: z.object({ blocks: z.array(blockRow) }), ...errors(401) },
      },
    },
    async (request) => ({ blocks: [...(await request.readAsCaller((tx) => listBlocks(tx)))] }),
  );
};

export default routes;
