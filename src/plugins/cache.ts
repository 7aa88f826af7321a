import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import caching from '@fastify/caching';
import abstractCache from 'abstract-cache';

/**
 * The 60-second cache of the conversation views, in `fastify.cache`
 * (abstract-cache: memory, or Redis when CACHE_URL is set).
 *
 * Keys are `<userId>:<version>:<url>`: one user's entry can never answer
 * another user's request. Eviction does not delete keys; it gives the user a
 * new random version, so every entry of the old version is unreachable at
 * once. That also closes the read/evict race: a reader reads the version
 * *before* it queries, so if a writer commits and evicts while the reader's
 * query runs, the reader stores its (possibly stale) result under the old,
 * already unreachable version.
 */

type Entry = { body: string; etag: string };

type AwaitCache = {
  get(key: { id: string; segment: string }): Promise<{ item: unknown } | null>;
  set(key: { id: string; segment: string }, value: unknown, ttlMs: number): Promise<void>;
};

export type ViewCache = {
  /** Serves the cached view or builds, stores and sends it. */
  serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<unknown>): Promise<FastifyReply>;
  /** Makes every cached view of these users unreachable. */
  evictUsers(userIds: Iterable<number>): Promise<void>;
};

declare module 'fastify' {
  interface FastifyInstance {
    viewCache: ViewCache;
  }
}

const SEGMENT = 'signalbox-views';
const VERSION_TTL_MS = 24 * 60 * 60 * 1000;

export type CacheOptions = {
  ttlSeconds: number;
  /** An abstract-cache client (either style); memory when omitted. */
  client?: unknown;
};

async function cachePlugin(app: FastifyInstance, options: CacheOptions): Promise<void> {
  const client = options.client ?? abstractCache({ useAwait: false, driver: { options: { maxItems: 100_000 } } });
  // @fastify/caching calls the store callback-style (an await-style store
  // would leave its If-None-Match hook hanging forever); our code awaits.
  // abstract-cache adapts one client to either style.
  const callbackStore = abstractCache({ useAwait: false, client });
  const store = abstractCache({ useAwait: true, client }) as AwaitCache;
  // @fastify/caching provides fastify.cache. We never call reply.etag(), so
  // its URL-blind If-None-Match shortcut (an onRequest hook keyed by the ETag
  // alone) never finds anything: our ETags are checked after authentication.
  await app.register(caching, { cache: callbackStore as never });
  const ttlMs = options.ttlSeconds * 1000;

  async function versionOf(userId: number): Promise<string> {
    const key = { id: `v:${userId}`, segment: SEGMENT };
    const found = await store.get(key);
    if (typeof found?.item === 'string') return found.item;
    // A missing version (never set, expired, or pushed out of the LRU) gets a
    // fresh one rather than a default, so no old entry can become reachable.
    const fresh = crypto.randomBytes(8).toString('hex');
    await store.set(key, fresh, VERSION_TTL_MS);
    return fresh;
  }

  async function evictUsers(userIds: Iterable<number>): Promise<void> {
    await Promise.all(
      [...new Set(userIds)].map((id) =>
        store.set({ id: `v:${id}`, segment: SEGMENT }, crypto.randomBytes(8).toString('hex'), VERSION_TTL_MS),
      ),
    );
  }

  function send(request: FastifyRequest, reply: FastifyReply, entry: Entry, status: 'HIT' | 'MISS'): FastifyReply {
    reply.header('Cache-Control', 'private, no-cache').header('ETag', entry.etag).header('X-Cache', status).header('Vary', 'Authorization, Cookie');
    const match = request.headers['if-none-match'];
    if (match && match.split(',').some((tag) => tag.trim() === entry.etag)) return reply.code(304).send(null);
    return reply.type('application/json; charset=utf-8').send(entry.body);
  }

  async function serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<unknown>): Promise<FastifyReply> {
    const userId = request.userId;
    if (!userId) throw new Error('viewCache.serve needs an authenticated request');
    const version = await versionOf(userId);
    const key = { id: `${userId}:${version}:${request.url}`, segment: SEGMENT };
    const cached = await store.get(key);
    if (cached && typeof cached.item === 'object' && cached.item !== null) {
      return send(request, reply, cached.item as Entry, 'HIT');
    }
    const body = JSON.stringify(await build());
    const entry: Entry = { body, etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    await store.set(key, entry, ttlMs);
    return send(request, reply, entry, 'MISS');
  }

  app.decorate('viewCache', { serve, evictUsers });
}

export default fp(cachePlugin, { name: 'view-cache' });
