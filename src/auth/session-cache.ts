import { LRUCache } from 'lru-cache';

/**
 * Live sessions kept in memory, so an authenticated request needs no round
 * trip to look its token up (the largest fixed cost of a cached view).
 *
 * Sound only because revocation is announced: the sessions table's
 * trigger (migration 000007) sends the affected users on signalbox_sessions
 * whenever a statement deletes or changes sessions — logout, account
 * deletion, a DBA's DELETE — and every instance drops those users' entries.
 * So the cache is used only while that announcement can reach this
 * process:
 *
 * - no LISTEN connection, or while it is down: every request looks its
 *   session up in the database (no entry is read or stored);
 * - entries carry the connection's epoch, so after a reconnect (when
 *   announcements may have been missed) every older entry is ignored;
 * - a lookup that overlapped a revocation is not stored (the row it read
 *   may be the one just deleted);
 * - an entry never outlives the session's expires_at, nor `ttlMs`.
 *
 * What a revoked token can still do: be accepted by an instance that has
 * not yet received the announcement, i.e. for the time a NOTIFY takes to
 * arrive after the revoking commit (a few milliseconds on one network). A
 * request that looked its session up just before the commit had the same
 * window before this cache.
 */
export type RevocationSource = {
  /** Whether announcements reach this process now. */
  listening(): boolean;
  /** Changes on every (re)connection of the LISTEN connection. */
  epoch(): number;
};

type Entry = { userId: number; until: number; epoch: number };

export type SessionLookup = { userId: number; expiresAt: number } | null;

export class SessionCache {
  private readonly entries: LRUCache<string, Entry>;
  /** Each user's cached keys, so a revocation touches those only, not every entry. */
  private readonly keysByUser = new Map<number, Set<string>>();
  private revocations = 0;
  private source: RevocationSource | null = null;

  constructor(private readonly options: { ttlMs: number; maxEntries: number }) {
    this.entries = new LRUCache({
      max: Math.max(1, options.maxEntries),
      // Evicted, replaced or deleted: the user's index forgets the key.
      dispose: (entry, key) => {
        const keys = this.keysByUser.get(entry.userId);
        keys?.delete(key);
        if (keys?.size === 0) this.keysByUser.delete(entry.userId);
      },
    });
  }

  /** Enables the cache: revocations arrive through `source`. */
  attach(source: RevocationSource): void {
    this.source = source;
  }

  private usable(): boolean {
    return this.options.ttlMs > 0 && this.source !== null && this.source.listening();
  }

  /** The user of a live session (`key`: the token hash), from memory or from `load`. */
  async userOf(key: string, load: () => Promise<SessionLookup>): Promise<number | null> {
    const source = this.source;
    if (this.usable() && source) {
      const hit = this.entries.get(key);
      if (hit && hit.epoch === source.epoch() && hit.until > Date.now()) return hit.userId;
    }
    const revocations = this.revocations;
    const epoch = source?.epoch();
    const found = await load();
    if (found && this.usable() && source && this.revocations === revocations && source.epoch() === epoch) {
      this.entries.set(key, { userId: found.userId, until: Math.min(found.expiresAt, Date.now() + this.options.ttlMs), epoch: epoch! });
      let keys = this.keysByUser.get(found.userId);
      if (!keys) this.keysByUser.set(found.userId, (keys = new Set()));
      keys.add(key);
    }
    return found?.userId ?? null;
  }

  /** Drops the cached sessions of these users ('all': every one). */
  revoke(users: readonly number[] | 'all'): void {
    this.revocations++;
    if (users === 'all') {
      this.entries.clear();
      return;
    }
    for (const user of users) for (const key of [...(this.keysByUser.get(user) ?? [])]) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
