import crypto from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import caching from '@fastify/caching';
import { createMemoryCacheClient, type MemoryCacheClient } from '../cache/memory-store';
import type { RedisCacheClient } from '../cache/redis-store';

/**
 * The 60-second cache of the conversation views. Its store is
 * `fastify.cache`, the one @fastify/caching decorates: an lru-cache bounded
 * in bytes by default, Redis when CACHE_URL is set.
 *
 * Keys are `<prefix>:<generation>:<userId>:<version>:<url>`:
 * - `prefix` names the deployment (CACHE_PREFIX, else derived from the
 *   database's system identifier and name), so two deployments sharing a
 *   Redis never read each other's entries;
 * - one user's entry can never answer another user's request;
 * - eviction gives the user a new random version, so every entry of the old
 *   one is unreachable at once. A reader reads the version *before* it
 *   queries, so if a writer commits and evicts while the reader's query
 *   runs, the reader stores its (possibly stale) result under the old,
 *   already unreachable version: no read/evict race.
 * - `generation` is the whole cache's version. Any failed store operation
 *   (Redis unreachable) may have been a lost eviction, so this instance
 *   stops using the cache — every view is answered from the database — until
 *   it has written a new generation, which makes every entry stored before
 *   the failure unreachable on every instance. A write whose eviction failed
 *   is therefore never hidden by an old entry once the store is back.
 *   Instances re-read the generation at most once a second; one that saw no
 *   failure itself still evicted through the database's events.
 *
 * The cache is an optimisation, never a dependency: when the store fails
 * requests are answered from the database and /healthz says so.
 */

type Entry = { body: string; etag: string };
type Key = { id: string; segment: string };

type Store = {
  get(key: Key): Promise<{ item: unknown } | null>;
  set(key: Key, value: unknown, ttlMs: number): Promise<void>;
};

export type ViewCache = {
  /** Serves the cached view or builds (its JSON body), stores and sends it. */
  serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<string>): Promise<FastifyReply>;
  /** Makes every cached view of these users unreachable. */
  evictUsers(userIds: Iterable<number>): Promise<void>;
  /** Makes every entry unreachable (after events were missed). */
  evictAll(): Promise<void>;
  /** 'memory', or whether the shared store answers right now. */
  check(): Promise<'memory' | 'ok' | 'unavailable'>;
  /** Bytes and entries of the memory store (null for Redis). */
  stats(): ReturnType<MemoryCacheClient['stats']> | null;
};

declare module 'fastify' {
  interface FastifyInstance {
    viewCache: ViewCache;
  }
}

const VERSION_TTL_MS = 24 * 60 * 60 * 1000;
const STORE_TIMEOUT_MS = 250;
const GENERATION_REFRESH_MS = 1000;

export type CacheOptions = {
  ttlSeconds: number;
  /** Names this deployment in every key (see above). */
  prefix: string;
  /** The shared store (Redis); the byte-bounded memory store when omitted. */
  client?: RedisCacheClient | undefined;
  maxBytes: number;
  maxEntryBytes: number;
};

async function cachePlugin(app: FastifyInstance, options: CacheOptions): Promise<void> {
  const memory = options.client ? null : createMemoryCacheClient({ maxBytes: options.maxBytes });
  const client = options.client ?? memory!;
  const store = client as Store;
  const segment = options.prefix;
  const ttlMs = options.ttlSeconds * 1000;
  let healthy = true;
  // The generation in use, when it was read, and whether a failure since
  // then obliges this instance to write a new one before using the cache.
  let generation: string | null = memory ? crypto.randomBytes(4).toString('hex') : null;
  let generationReadAt = 0;
  let mustRenew = false;

  /**
   * A store call that fails or hangs yields `fallback` instead of failing the
   * request. The memory store cannot do either: its calls go straight
   * through, without a timer per call.
   */
  async function guarded<T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> {
    if (memory) return call();
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
      if (healthy) app.log.warn({ err }, `view cache ${what} failed; answering from the database until it recovers`);
      healthy = false;
      mustRenew = true;
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  const generationKey: Key = { id: 'generation', segment };
  // Versions and generations must never repeat: this process's random id
  // and a counter (cheaper than random bytes on every eviction).
  const processId = crypto.randomBytes(6).toString('hex');
  let issued = 0;
  const newToken = () => `${processId}.${(++issued).toString(36)}`;

  /** The generation to use now, or null while the cache must not be used. */
  async function currentGeneration(): Promise<string | null> {
    if (memory) return generation;
    if (mustRenew) {
      const fresh = newToken();
      const written = await guarded('renew', async () => {
        await store.set(generationKey, fresh, VERSION_TTL_MS);
        return true;
      }, false);
      if (!written) return null;
      mustRenew = false;
      generation = fresh;
      generationReadAt = Date.now();
      app.log.info('view cache: store reachable again; entries from before the failure are unreachable now');
      return generation;
    }
    if (generation !== null && Date.now() - generationReadAt < GENERATION_REFRESH_MS) return generation;
    const found = await guarded('get', () => store.get(generationKey), undefined);
    if (found === undefined) return null;
    if (typeof found?.item === 'string') {
      generation = found.item;
    } else {
      // None yet (or expired): start one. SET NX, so instances racing here
      // agree on the first one written.
      const fresh = newToken();
      const shared = options.client!;
      const stored = await guarded('set', () => shared.setIfAbsent(generationKey, fresh, VERSION_TTL_MS), null);
      if (stored === null) return null;
      const winner = stored ? { item: fresh } : await guarded('get', () => store.get(generationKey), undefined);
      if (typeof winner?.item !== 'string') return null;
      generation = winner.item;
    }
    generationReadAt = Date.now();
    return mustRenew ? null : generation;
  }

  // @fastify/caching decorates fastify.cache with this store and calls it
  // callback-style (an await-style store would leave its If-None-Match hook
  // hanging forever); an error there would fail the request, so it gets the
  // guarded store. Its reply.etag() is not used: that ETag shortcut is an
  // onRequest hook keyed by the ETag alone, blind to the URL and the user
  // and run before authentication (docs/cache.md).
  const callbackStore = {
    get: (key: Key, done: (err: null, value: unknown) => void) =>
      void guarded('get', () => store.get(key), null).then((value) => done(null, value)),
    set: (key: Key, value: unknown, ttl: number, done: (err: null) => void) =>
      void guarded('set', () => store.set(key, value, ttl), undefined).then(() => done(null)),
  };
  await app.register(caching, { cache: callbackStore as never });
  // The views read and write through fastify.cache itself, awaited. It never
  // fails (a failure yields a miss and sets mustRenew), so after a call
  // `mustRenew` tells whether the store answered.
  const cache = app.cache as unknown as typeof callbackStore;
  const views: Store = {
    get: (key) => new Promise((resolve) => cache.get(key, (_err, value) => resolve(value as { item: unknown } | null))),
    set: (key, value, ttl) => new Promise((resolve) => cache.set(key, value, ttl, () => resolve())),
  };

  const versionKey = (gen: string, userId: number): Key => ({ id: `${gen}:v:${userId}`, segment });

  async function versionOf(gen: string, userId: number): Promise<string | null> {
    const found = await views.get(versionKey(gen, userId));
    if (mustRenew) return null;
    if (typeof found?.item === 'string') return found.item;
    // A missing version (never set, expired, or pushed out of the LRU) gets a
    // fresh one rather than a default, so no old entry can become reachable.
    const fresh = newToken();
    await views.set(versionKey(gen, userId), fresh, VERSION_TTL_MS);
    return mustRenew ? null : fresh;
  }

  async function evictUsers(userIds: Iterable<number>): Promise<void> {
    const gen = await currentGeneration();
    if (gen === null) {
      // The store is away: the cache is off here until a new generation is
      // written, which also makes these users' old entries unreachable.
      mustRenew = true;
      return;
    }
    await Promise.all([...new Set(userIds)].map((id) => views.set(versionKey(gen, id), newToken(), VERSION_TTL_MS)));
  }

  function send(request: FastifyRequest, reply: FastifyReply, entry: Entry, status: 'HIT' | 'MISS'): FastifyReply {
    reply
      .header('Cache-Control', 'private, no-cache')
      .header('ETag', entry.etag)
      .header('X-Cache', status)
      .header('Vary', 'Authorization, Cookie');
    const match = request.headers['if-none-match'];
    if (match && match.split(',').some((tag) => tag.trim() === entry.etag)) return reply.code(304).send();
    // JSON text passed through (checked against the route's schema under CHECK_SHAPES, app.ts).
    return reply.sendJson(entry.body);
  }

  const entryOf = (body: string): Entry => ({
    body,
    etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
  });

  async function serve(request: FastifyRequest, reply: FastifyReply, build: () => Promise<string>): Promise<FastifyReply> {
    const userId = request.userId;
    if (!userId) throw new Error('viewCache.serve needs an authenticated request');
    if (ttlMs === 0) return send(request, reply, entryOf(await build()), 'MISS');
    const gen = await currentGeneration();
    const version = gen === null ? null : await versionOf(gen, userId);
    const key: Key = { id: `${gen}:${userId}:${version}:${request.url}`, segment };
    if (version !== null) {
      const cached = await views.get(key);
      if (cached && typeof cached.item === 'object' && cached.item !== null) {
        return send(request, reply, cached.item as Entry, 'HIT');
      }
    }
    const entry = entryOf(await build());
    // Entries above the size limit are answered, not stored (either store).
    if (version !== null && !mustRenew && 2 * entry.body.length <= options.maxEntryBytes) {
      await views.set(key, entry, ttlMs);
    }
    return send(request, reply, entry, 'MISS');
  }

  // Every committed write of a request evicts the views it changed, before
  // the answer (plugins/db.ts): the writer sees its own write at once.
  app.onCommittedWrite(async (change) => {
    if (change.users.length > 0) await evictUsers(change.users);
  });

  app.decorate('viewCache', {
    serve,
    evictUsers,
    async evictAll() {
      if (memory) generation = newToken();
      else mustRenew = true;
    },
    async check() {
      if (memory) return 'memory';
      await guarded('ping', () => store.get({ id: 'ping', segment }), null);
      return healthy ? 'ok' : 'unavailable';
    },
    stats: () => memory?.stats() ?? null,
  } satisfies ViewCache);
}

export default fp(cachePlugin, { name: 'view-cache', fastify: '5.x', dependencies: ['db'] });
