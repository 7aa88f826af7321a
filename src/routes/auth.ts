import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hashToken, isWellFormedToken, newToken } from '../auth/tokens';
import { minuteBudget } from '../budgets';
import { HttpError, rateLimited, unauthorized } from '../http-errors';
import { SESSION_COOKIE } from '../plugins/auth';
import { userRow } from '../queries/schemas';
import { createSession, createUser, deleteSession, findCredentials, getMeJson, meRow } from '../queries/users';
import { displayName, errors, password, username } from './inputs';

/** The device token's cookie (browsers) and header (API clients): OWASP's device cookie. */
export const DEVICE_COOKIE = 'signalbox_device';
export const DEVICE_HEADER = 'X-Signalbox-Device';
const DEVICE_TTL_SECONDS = 365 * 24 * 3600;

const session = z.object({
  user: userRow,
  token: z.string(),
  deviceToken: z.string().describe(`This device's token for the account (also the ${DEVICE_COOKIE} cookie): present it at later logins as the ${DEVICE_HEADER} header`),
});

/** The well-formed device token the client presented, or null. */
function presentedDevice(request: FastifyRequest): string | null {
  const header = request.headers[DEVICE_HEADER.toLowerCase()];
  const token = typeof header === 'string' ? header.trim() : request.cookies[DEVICE_COOKIE];
  return token && isWellFormedToken(token) ? token : null;
}

export type AuthRouteOptions = { sessionTtlHours: number; registerRateLimit: number };

const routes: FastifyPluginAsyncZod<AuthRouteOptions> = async (app, options) => {
  /**
   * Issues a session: the token in the body (API clients) and an HttpOnly
   * cookie (the web UI); and trusts the device for the account (the device
   * token it presented, or a new one), so that its later logins are not
   * judged as a stranger's (plugins/passwords.ts).
   */
  async function startSession(userId: number, request: FastifyRequest, reply: FastifyReply) {
    const token = newToken();
    const deviceToken = presentedDevice(request) ?? newToken();
    await createSession(app.pool, { userId, tokenHash: hashToken(token), ttlHours: options.sessionTtlHours, deviceHash: hashToken(deviceToken) });
    // A new account must not look missing to its own first reads on a replica.
    app.reads.wrote([userId]);
    const cookie = { httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' } as const;
    reply.setCookie(SESSION_COOKIE, token, { ...cookie, path: '/', maxAge: options.sessionTtlHours * 3600 });
    reply.setCookie(DEVICE_COOKIE, deviceToken, { ...cookie, path: '/auth', maxAge: DEVICE_TTL_SECONDS });
    return { token, deviceToken };
  }

  // Every budget is checked before any password is hashed or verified:
  // argon2 is deliberately expensive, so these routes are the cheapest way
  // to burn the server's CPU. Login and DELETE /me check passwords within
  // their budgets (plugins/passwords.ts); sign-ups have their own.
  const signUps = minuteBudget(app, options.registerRateLimit, (r) => `register-ip:${r.ip}`);
  const registerRateLimit = async (request: FastifyRequest) => {
    const wait = await signUps.spend(request);
    if (wait !== null) throw rateLimited(`too many sign-ups from this address; try again in ${wait} s`, wait);
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
      return reply.code(201).send({ user, ...(await startSession(user.id, request, reply)) });
    },
  );

  app.post(
    '/auth/login',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Sign in',
        description:
          `A client that signed in to this account before presents the device token it was given (the ${DEVICE_COOKIE} cookie, ` +
          `or the ${DEVICE_HEADER} header): its attempts are exempt from the per-account lockout and served first (docs/limits.md).`,
        security: [],
        body: z.object({ username, password: z.string().min(1).max(256) }).strict(),
        response: { 200: session, ...errors(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const device = presentedDevice(request);
      const deviceHash = device ? hashToken(device) : null;
      const found = await findCredentials(app.pool, username, deviceHash);
      const trusted = found?.trustedDevice ? deviceHash : null;
      const ok = await app.passwords.check(request, { username }, found?.passwordHash ?? null, password, trusted);
      if (!found || !ok) throw unauthorized('wrong username or password');
      const { passwordHash: _hash, trustedDevice: _trusted, ...user } = found;
      return reply.code(200).send({ user, ...(await startSession(user.id, request, reply)) });
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

  app.get(
    '/auth/session',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Who this request is signed in as, or null: asks without a 401',
        description:
          'The web client asks this on load: a signed-out visitor gets 200 `{user: null}` rather than a 401 ' +
          '(which a browser logs as an error on the login page). `GET /me` still answers 401 without a session.',
        response: { 200: z.object({ user: meRow.nullable() }), ...errors(400) },
      },
    },
    async (request, reply) => {
      try {
        await app.authenticate(request, reply);
      } catch (error) {
        if (error instanceof HttpError && error.statusCode === 401) return reply.sendJson('{"user":null}');
        throw error;
      }
      const me = await request.readView((pool, caller) => getMeJson(pool, caller));
      return reply.sendJson(`{"user":${me ?? 'null'}}`);
    },
  );
};

export default routes;
