import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import cookie from '@fastify/cookie';
import { hashToken, isWellFormedToken } from '../auth/tokens';
import { HttpError, unauthorized } from '../http-errors';
import { findSessionUserId } from '../queries/users';

export const SESSION_COOKIE = 'signalbox_session';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for protected routes: sets request.userId or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  }
  interface FastifyRequest {
    /** The raw token the caller presented (for logout). */
    sessionToken: string | null;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Bearer header first; the browser UI's HttpOnly cookie otherwise; never
 * the URL. A cookie-authenticated write must also carry X-Signalbox-Client:
 * a cross-site page cannot add that header without a CORS preflight, which
 * this API never grants (defence in depth beside SameSite=Strict).
 */
function presentedToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
    if (!match?.[1]) throw unauthorized('the Authorization header must be "Bearer <token>"');
    return match[1];
  }
  const cookie = request.cookies[SESSION_COOKIE];
  if (cookie && !SAFE_METHODS.has(request.method) && request.headers['x-signalbox-client'] === undefined) {
    throw new HttpError(403, 'CSRF', 'cookie-authenticated writes need the X-Signalbox-Client header');
  }
  return cookie ?? null;
}

async function authPlugin(app: FastifyInstance): Promise<void> {
  await app.register(cookie);
  app.decorateRequest('sessionToken', null);
  app.decorate('authenticate', async (request: FastifyRequest) => {
    const token = presentedToken(request);
    if (!token) throw unauthorized();
    if (!isWellFormedToken(token)) throw unauthorized('invalid or expired token');
    const userId = await findSessionUserId(app.pool, hashToken(token));
    if (!userId) throw unauthorized('invalid or expired token');
    request.userId = userId;
    request.sessionToken = token;
  });
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['db'] });
