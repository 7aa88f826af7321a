import type { FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/rate-limit';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashToken, newToken } from '../auth/tokens';
import { rateLimited, unauthorized } from '../http-errors';
import { SESSION_COOKIE } from '../plugins/auth';
import { userRow } from '../queries/schemas';
import { createSession, createUser, deleteSession, findCredentials } from '../queries/users';
import { displayName, errors, password, username } from './inputs';

const session = z.object({ user: userRow, token: z.string() });

export type AuthRouteOptions = { sessionTtlHours: number; registerRateLimit: number };

const routes: FastifyPluginAsyncZod<AuthRouteOptions> = async (app, options) => {
  /** Issues a session: the token in the body (API clients) and an HttpOnly cookie (the web UI). */
  async function startSession(userId: number, secure: boolean, reply: FastifyReply): Promise<string> {
    const token = newToken();
    await createSession(app.pool, { userId, tokenHash: hashToken(token), ttlHours: options.sessionTtlHours });
    // A new account must not look missing to its own first reads on a replica.
    app.reads.wrote([userId]);
    reply.setCookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
      maxAge: options.sessionTtlHours * 3600,
    });
    return token;
  }

  // Every budget is checked before any password is hashed or verified:
  // argon2 is deliberately expensive, so these routes are the cheapest way
  // to burn the server's CPU. Login and DELETE /me check passwords within
  // their budgets (plugins/passwords.ts); sign-ups have their own.
  const signUps = app.createRateLimit({
    max: options.registerRateLimit,
    timeWindow: '1 minute',
    keyGenerator: (r) => `register-ip:${r.ip}`,
  });
  const registerRateLimit = async (request: FastifyRequest) => {
    const result = await signUps(request);
    if (!result.isAllowed && result.isExceeded) {
      throw rateLimited(`too many sign-ups from this address; try again in ${result.ttlInSeconds} s`, result.ttlInSeconds);
    }
  };

  app.post(
    '/auth/register',
    {
      preHandler: registerRateLimit,
      schema: {
        tags: ['accounts'],
        summary: 'Create an account and sign in',
        security: [],
        body: z.object({ username, password, displayName: displayName.optional() }).strict(),
        response: { 201: session, ...errors(400, 409, 429, 503) },
      },
    },
    async (request, reply) => {
      const passwordHash = await app.passwords.hash(request.body.password);
      const user = await createUser(app.pool, {
        username: request.body.username,
        displayName: request.body.displayName ?? null,
        passwordHash,
      });
      const token = await startSession(user.id, request.protocol === 'https', reply);
      return reply.code(201).send({ user, token });
    },
  );

  app.post(
    '/auth/login',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Sign in',
        security: [],
        body: z.object({ username, password: z.string().min(1).max(256) }).strict(),
        response: { 200: session, ...errors(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const found = await findCredentials(app.pool, request.body.username);
      const { username, password } = request.body;
      const ok = await app.passwords.check(request, { username }, found?.passwordHash ?? null, password);
      if (!found || !ok) throw unauthorized('wrong username or password');
      const { passwordHash: _hash, ...user } = found;
      const token = await startSession(user.id, request.protocol === 'https', reply);
      return reply.code(200).send({ user, token });
    },
  );

  app.post(
    '/auth/logout',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['accounts'],
        summary: 'Revoke the token used for this request',
        response: { 204: z.null(), ...errors(401) },
      },
    },
    async (request, reply) => {
      if (request.sessionToken) await deleteSession(app.pool, hashToken(request.sessionToken));
      // At once here; the other instances when the revocation's NOTIFY arrives.
      if (request.userId) app.sessionCache.revoke([request.userId]);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );
};

export default routes;
