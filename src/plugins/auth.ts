import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import cookie from '@fastify/cookie';
import { SessionCache } from '../auth/session-cache';
import { hashToken, isWellFormedToken } from '../auth/tokens';
import { HttpError, unauthorized } from '../http-errors';
import { findSession } from '../queries/users';

export const SESSION_COOKIE = 'signalbox_session';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for protected routes: sets request.userId or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** Live sessions in memory while revocations are announced (the live plugin attaches the LISTEN connection). */
    sessionCache: SessionCache;
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

export type AuthOptions = { sessionCacheSeconds: number; sessionCacheMaxEntries: number };

async function authPlugin(app: FastifyInstance, options: AuthOptions): Promise<void> {
  await app.register(cookie);
  const sessions = new SessionCache({ ttlMs: options.sessionCacheSeconds * 1000, maxEntries: options.sessionCacheMaxEntries });
  app.decorate('sessionCache', sessions);
  // A write of this instance that deleted sessions (an account deletion)
  // drops them here before its answer; the others hear it by NOTIFY.
  app.onCommittedWrite(async ({ revokedSessions }) => {
    if (revokedSessions === 'all' || revokedSessions.length > 0) sessions.revoke(revokedSessions);
  });
  app.decorateRequest('sessionToken', null);
  app.decorate('authenticate', async (request: FastifyRequest) => {
    const token = presentedToken(request);
    if (!token) throw unauthorized();
    if (!isWellFormedToken(token)) throw unauthorized('invalid or expired token');
    const hash = hashToken(token);
    const userId = await sessions.userOf(hash.toString('base64'), () => app.onReadPool((pool) => findSession(pool, hash)));
    if (!userId) throw unauthorized('invalid or expired token');
    request.userId = userId;
    request.sessionToken = token;
  });
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x', dependencies: ['db'] });
