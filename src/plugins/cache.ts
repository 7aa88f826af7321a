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
 *
 * The cache is an optimisation, never a dependency: when the store fails
 * (Redis down) requests are answered from the database and /healthz says so.
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
  /** Drops every entry this process holds (after missed events); no-op for a shared store. */
  evictLocal(): void;
  /** 'memory', or whether the shared store answers right now. */
  check(): Promise<'memory' | 'ok' | 'unavailable'>;
};

declare module 'fastify' {
  interface FastifyInstance {
    viewCache: ViewCache;
  }
}

const SEGMENT = 'signalbox-views';
const VERSION_TTL_MS = 24 * 60 * 60 * 1000;
const STORE_TIMEOUT_MS = 250;

export type CacheOptions = {
  ttlSeconds: number;
  /** A shared abstract-cache client (either style), e.g. Redis; memory when omitted. */
  client?: unknown;
};

async function cachePlugin(app: FastifyInstance, options: CacheOptions): Promise<void> {
  const shared = options.client !== undefined;
  const client = options.client ?? abstractCache({ useAwait: false, driver: { options: { maxItems: 100_000 } } });
  // Our code awaits the store; abstract-cache adapts either style of client.
  const store = abstractCache({ useAwait: true, client }) as AwaitCache;
  const ttlMs = options.ttlSeconds * 1000;
  // Part of every key; replacing it empties this process's memory cache.
  let epoch = shared ? 'shared' : crypto.randomBytes(4).toString('hex');
  let healthy = true;

  /** A store call that fails or hangs yields `fallback` instead of failing the request. */
  async function guarded<T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        call(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`cache ${what} timed out`)), STORE_TIMEOUT_MS);
        }),
      ]);
      healthy = true;
      return result;
    } catch (err) {
      if (healthy) app.log.warn({ err }, `view cache ${what} failed; answering from the database`);
      healthy = false;
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  // @fastify/caching provides fastify.cache and calls it callback-style (an
  // await-style store would leave its If-None-Match hook hanging forever),
  // and an error there would fail the request: hand it the guarded store.
  // We never call reply.etag(), so that URL-blind If-None-Match shortcut (an
  // onRequest hook keyed by the ETag alone) never finds anything: our ETags
  // are checked after authentication.
  type Key = { id: string; segment: string };
  const callbackStore = {
    get: (key: Key, done: (err: null, value: unknown) => void) =>
      void guarded('get', () => store.get(key), null).then((value) => done(null, value)),
    set: (key: Key, value: unknown, ttl: number, done: (err: null) => void) =>
      void guarded('set', () => store.set(key, value, ttl), undefined).then(() => done(null)),
  };
  await app.register(caching, { cache: callbackStore as never });

  const versionKey = (userId: number) => ({ id: `${epoch}:v:${userId}`, segment: SEGMENT });
  const newVersion = () => crypto.randomBytes(8).toString('hex');

  async function versionOf(userId: number): Promise<string | null> {
    const found = await guarded('get', () => store.get(versionKey(userId)), undefined);
    if (found === undefined) return null;
    if (typeof found?.item === 'string') return found.item;
    // A missing version (never set, expired, or pushed out of the LRU) gets a
    // fresh one rather than a default, so no old entry can become reachable.
    const fresh = newVersion();
    await guarded('set', () => store.set(versionKey(userId), fresh, VERSION_TTL_MS), undefined);
    return fresh;
  }

  async function evictUsers(userIds: Iterable<number>): Promise<void> {
    await Promise.all(
      [...new Set(userIds)].map((id) => guarded('evict', () => store.set(versionKey(id), newVersion(), VERSION_TTL_MS), undefined)),
    );
  }

  function send(request: FastifyRequest, reply: FastifyReply, entry: Entry, status: 'HIT' | 'MISS'): FastifyReply {
    reply
      .header('Cache-Control', 'private, no-cache')
      .header('ETag', entry.etag)
      .header('X-Cache', status)
      .header('Vary', 'Authorization, Cookie');
    const match = request.headers['if-none-match'];
    if (match && match.split(',').some((tag) => tag.trim() === entry.etag)) return reply.code(304).send(null);
    return reply.type('application/json; charset=utf-8').send(entry.body);
  }

  const entryOf = (body: string): Entry => ({
    body,
    etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  });

  async function serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<unknown>): Promise<FastifyReply> {
    const userId = request.userId;
    if (!userId) throw new Error('viewCache.serve needs an authenticated request');
    if (ttlMs === 0) return send(request, reply, entryOf(JSON.stringify(await build())), 'MISS');
    const version = await versionOf(userId);
    const key = { id: `${epoch}:${userId}:${version}:${request.url}`, segment: SEGMENT };
    if (version !== null) {
      const cached = await guarded('get', () => store.get(key), null);
      if (cached && typeof cached.item === 'object' && cached.item !== null) {
        return send(request, reply, cached.item as Entry, 'HIT');
      }
    }
    const entry = entryOf(JSON.stringify(await build()));
    // With the store down there is no version to store under: just answer.
    if (version !== null) await guarded('set', () => store.set(key, entry, ttlMs), undefined);
    return send(request, reply, entry, 'MISS');
  }

  app.decorate('viewCache', {
    serve,
    evictUsers,
    evictLocal() {
      if (!shared) epoch = crypto.randomBytes(4).toString('hex');
    },
    async check() {
      if (!shared) return 'memory';
      await guarded('ping', () => store.get({ id: 'ping', segment: SEGMENT }), null);
      return healthy ? 'ok' : 'unavailable';
    },
  } satisfies ViewCache);
}

export default fp(cachePlugin, { name: 'view-cache' });
