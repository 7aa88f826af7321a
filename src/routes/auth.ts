import type { FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/rate-limit';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashPassword, hashToken, newToken, verifyPassword } from '../auth/tokens';
import { HttpError, unauthorized } from '../errors';
import { SESSION_COOKIE } from '../plugins/auth';
import { userRow } from '../queries/schemas';
import { createSession, createUser, deleteSession, findCredentials } from '../queries/users';
import { displayName, errors, password, username } from './inputs';

const session = z.object({ user: userRow, token: z.string() });

export type AuthRouteOptions = { sessionTtlHours: number; loginRateLimit: number; registerRateLimit: number };

const routes: FastifyPluginAsyncZod<AuthRouteOptions> = async (app, options) => {
  /** Issues a session: the token in the body (API clients) and an HttpOnly cookie (the web UI). */
  async function startSession(userId: number, secure: boolean, reply: FastifyReply): Promise<string> {
    const token = newToken();
    await createSession(app.pool, { userId, tokenHash: hashToken(token), ttlHours: options.sessionTtlHours });
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
  // to burn the server's CPU. (app.rateLimit() hooks would run only the
  // first limit of a route; createRateLimit() checks each one.)
  type Limit = { name: string; check: ReturnType<typeof app.createRateLimit> };
  const limit = (name: string, max: number, key: (r: FastifyRequest) => string): Limit => ({
    name,
    check: app.createRateLimit({ max, timeWindow: '1 minute', keyGenerator: key }),
  });
  const enforce = (what: string, limits: Limit[]) => async (request: FastifyRequest, reply: FastifyReply) => {
    for (const { name, check } of limits) {
      const result = await check(request);
      if (!result.isAllowed && result.isExceeded) {
        reply.header('Retry-After', String(result.ttlInSeconds));
        throw new HttpError(429, 'RATE_LIMITED', `too many ${what} for this ${name}; try again in ${result.ttlInSeconds} s`);
      }
    }
  };
  const loginRateLimit = enforce('login attempts', [
    limit('address', options.loginRateLimit, (r) => `login-ip:${r.ip}`),
    limit('username', options.loginRateLimit, (r) => `login-user:${(r.body as { username: string }).username}`),
  ]);
  const registerRateLimit = enforce('sign-ups', [limit('address', options.registerRateLimit, (r) => `register-ip:${r.ip}`)]);

  app.post(
    '/auth/register',
    {
      preHandler: registerRateLimit,
      schema: {
        tags: ['accounts'],
        summary: 'Create an account and sign in',
        security: [],
        body: z.object({ username, password, displayName: displayName.optional() }).strict(),
        response: { 201: session, ...errors(400, 409, 429) },
      },
    },
    async (request, reply) => {
      const passwordHash = await hashPassword(request.body.password);
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
      preHandler: loginRateLimit,
      schema: {
        tags: ['accounts'],
        summary: 'Sign in',
        security: [],
        body: z.object({ username, password: z.string().min(1).max(256) }).strict(),
        response: { 200: session, ...errors(400, 401, 429) },
      },
    },
    async (request, reply) => {
      const found = await findCredentials(app.pool, request.body.username);
      const ok = await verifyPassword(found?.passwordHash ?? null, request.body.password);
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
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  );
};

export default routes;
