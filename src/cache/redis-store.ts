import { Redis } from 'ioredis';

/**
 * An abstract-cache client (await style) on ioredis 5, for CACHE_URL. It
 * fails fast while Redis is down (no offline queue, one try per command), so
 * the view cache falls back to the database instead of making requests wait.
 * Entries expire in Redis itself (PX), so every instance agrees on the TTL.
 */
export type RedisCacheClient = {
  await: true;
  get(key: { id: string; segment: string }): Promise<{ item: unknown; stored: number; ttl: number } | null>;
  set(key: { id: string; segment: string }, value: unknown, ttlMs: number): Promise<void>;
  /** SET NX: stores only when the key is absent; true when it stored. */
  setIfAbsent(key: { id: string; segment: string }, value: unknown, ttlMs: number): Promise<boolean>;
  has(key: { id: string; segment: string }): Promise<boolean>;
  delete(key: { id: string; segment: string }): Promise<void>;
  close(): Promise<void>;
  /** The connection, shared with the rate limits (@fastify/rate-limit's Redis store). */
  redis: Redis;
};

/** Keys are `<segment>:<id>`; the view cache puts the deployment's prefix in the segment. */
export function createRedisCacheClient(url: string): RedisCacheClient {
  const mapKey = (key: { id: string; segment: string }) => `${key.segment}:${key.id}`;
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    lazyConnect: false,
    // Keep trying to come back, at most every 2 s.
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
  // Connection errors surface through the failed commands; do not crash.
  redis.on('error', () => {});
  return {
    await: true,
    async get(key) {
      const raw = await redis.get(mapKey(key));
      if (raw === null) return null;
      const { item, stored } = JSON.parse(raw) as { item: unknown; stored: number };
      return { item, stored, ttl: 0 };
    },
    async set(key, value, ttlMs) {
      await redis.set(mapKey(key), JSON.stringify({ item: value, stored: Date.now() }), 'PX', Math.max(1, Math.round(ttlMs)));
    },
    async setIfAbsent(key, value, ttlMs) {
      const done = await redis.set(mapKey(key), JSON.stringify({ item: value, stored: Date.now() }), 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
      return done === 'OK';
    },
    async has(key) {
      return (await redis.exists(mapKey(key))) === 1;
    },
    async delete(key) {
      await redis.del(mapKey(key));
    },
    async close() {
      redis.disconnect();
    },
    redis,
  };
}
