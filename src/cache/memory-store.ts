import { LRUCache } from 'lru-cache';

/**
 * The view cache's in-process store: an abstract-cache client (await style)
 * on lru-cache, bounded in bytes, not only in entries. Each entry is
 * charged the UTF-16 size of its key and of its JSON, so a user who makes
 * many distinct 6 MB pages pushes out the least recently used entries
 * instead of growing the heap (the view cache itself never stores an entry
 * above CACHE_MAX_ENTRY_BYTES, whichever the store). Expired entries are
 * purged on their timer, not only when their key is read again.
 */
export type MemoryCacheClient = {
  await: true;
  get(key: { id: string; segment: string }): Promise<{ item: unknown; stored: number; ttl: number } | null>;
  set(key: { id: string; segment: string }, value: unknown, ttlMs: number): Promise<void>;
  has(key: { id: string; segment: string }): Promise<boolean>;
  delete(key: { id: string; segment: string }): Promise<void>;
  /** Bytes and entries held now: for /healthz and the tests. */
  stats(): { bytes: number; entries: number; maxBytes: number };
};

type Stored = { item: unknown; stored: number; ttl: number };

/** Characters of a stored value: a view entry's body without re-serialising it. */
function lengthOf(item: unknown): number {
  if (typeof item === 'string') return item.length;
  const entry = item as { body?: unknown; etag?: unknown } | null;
  if (typeof entry?.body === 'string' && typeof entry.etag === 'string') return entry.body.length + entry.etag.length;
  return JSON.stringify(item ?? null).length;
}

export function createMemoryCacheClient(options: { maxBytes: number }): MemoryCacheClient {
  const lru = new LRUCache<string, Stored>({
    maxSize: options.maxBytes,
    sizeCalculation: (value, key) => 2 * (key.length + lengthOf(value.item)) + 64,
    ttlAutopurge: true,
    // Entry lifetimes on the wall clock (Date.now), which tests can move,
    // read at every check: lru-cache otherwise memoises "now" until a 1 ms
    // timer clears it, and on a busy event loop that timer runs late, so an
    // entry could be served past its 60 s (seen in CI as a flaky HIT).
    perf: { now: () => Date.now() },
    ttlResolution: 0,
  });
  const mapKey = (key: { id: string; segment: string }) => `${key.segment}:${key.id}`;
  return {
    await: true,
    async get(key) {
      return lru.get(mapKey(key)) ?? null;
    },
    async set(key, value, ttlMs) {
      lru.set(mapKey(key), { item: value, stored: Date.now(), ttl: ttlMs }, { ttl: Math.max(1, Math.round(ttlMs)) });
    },
    async has(key) {
      return lru.has(mapKey(key));
    },
    async delete(key) {
      lru.delete(mapKey(key));
    },
    stats: () => ({ bytes: lru.calculatedSize, entries: lru.size, maxBytes: options.maxBytes }),
  };
}
