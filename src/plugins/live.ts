import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { asUser } from '../db/transaction';
import { DatabaseListener } from '../events/listener';
import { UserFeed, type StreamClient } from '../events/user-feed';
import { streamEventsAfter } from '../queries/notifications';
import { findLiveSessions } from '../queries/users';

/**
 * Wires the process's LISTEN connection to the live streams and the view
 * cache: a notification pokes its user's feed (one catch-up query serves
 * all of that user's streams in this process), a conversation change
 * evicts both participants' cached views (on every instance, since each
 * instance listens), a deleted account closes its streams at once, and a
 * revoked session leaves the session cache (which is used only while this
 * connection is up: src/auth/session-cache.ts).
 *
 * One heartbeat serves every stream of the process: a comment line to each,
 * then one query that re-checks all their sessions (an expired token ends
 * its stream), and a retry for streams whose last catch-up failed. A
 * revocation announced by the database (logout, a DBA's DELETE or UPDATE of
 * sessions, on any instance) re-checks that user's streams at once.
 */

type Entry = { userId: number; tokenHash: Buffer; client: StreamClient; end: () => void };

export type LiveRegistry = {
  /** Open streams one user may have in this process. */
  readonly maxStreamsPerUser: number;
  /** Whether the user may open one more stream here. */
  hasRoom(userId: number): boolean;
  add(entry: Entry): void;
  remove(entry: Entry): void;
  count(): number;
  /** Whether this process has a LISTEN connection at all. */
  enabled(): boolean;
  /** Whether the LISTEN connection is up right now. */
  listening(): boolean;
  /** How often the LISTEN connection was lost and made again since start. */
  reconnects(): number;
};

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveRegistry;
  }
}

export type LiveOptions = {
  /** Connection string for the LISTEN connection; no live events without it. */
  listenerUrl?: string | undefined;
  heartbeatMs: number;
  maxStreamsPerUser: number;
  /** How often the LISTEN connection is probed; unanswered at the next probe, it is replaced. */
  listenProbeMs?: number;
};

async function livePlugin(app: FastifyInstance, options: LiveOptions): Promise<void> {
  type Feed = { feed: UserFeed; entries: Set<Entry> };
  const byUser = new Map<number, Feed>();
  const forUser = (userId: number) => byUser.get(userId)?.entries ?? new Set<Entry>();
  let reconnects = 0;
  const all = () => [...byUser.values()].flatMap((f) => [...f.entries]);
  const feedOf = (userId: number): Feed => {
    let f = byUser.get(userId);
    if (!f) {
      const feed = new UserFeed({
        fetch: (afterSeq, limit) =>
          app.onReadPool((pool) => asUser(pool, app.visitorRole, userId, (tx) => streamEventsAfter(tx, userId, afterSeq, limit))),
        onError: (err) => app.log.warn({ err, userId }, 'live feed: catch-up failed; will retry'),
      });
      byUser.set(userId, (f = { feed, entries: new Set() }));
    }
    return f;
  };

  let listener: DatabaseListener | null = null;
  if (options.listenerUrl) {
    listener = new DatabaseListener({ connectionString: options.listenerUrl, log: app.log, probeMs: options.listenProbeMs });
    listener.on('notification', ({ userId }) => byUser.get(userId)?.feed.poke());
    listener.on('conversation', ({ users, instance }) => {
      // This instance's own write: its users were evicted and marked before
      // its answer (plugins/db.ts). Recognised by the instance id the
      // triggers copied from the transaction's settings, never by backend
      // pid: behind PgBouncer instances share backends.
      if (instance === app.instanceId) return;
      // Another instance's write: these users read from the primary until a
      // replica has replayed it, and their cached views go.
      app.reads.wrote(users);
      app.viewCache.evictUsers(users).catch((err: unknown) => app.log.warn({ err }, 'cache eviction failed'));
    });
    listener.on('userDeleted', ({ userId }) => {
      forUser(userId).forEach((e) => e.end());
      app.viewCache.evictUsers([userId]).catch((err: unknown) => app.log.warn({ err }, 'cache eviction failed'));
    });
    listener.on('sessionsRevoked', ({ users }) => {
      app.sessionCache.revoke(users);
      // Logout, revocation, suspension on any instance: the streams of
      // those sessions end now (within the NOTIFY's delivery), not at the
      // next heartbeat (up to SSE_HEARTBEAT_MS later, delivering all along).
      const affected = users === 'all' ? all() : users.flatMap((u) => [...forUser(u)]);
      checkSessions(affected).catch((err: unknown) => app.log.warn({ err }, 'live streams: revocation check failed'));
    });
    const events = listener;
    app.sessionCache.attach({ listening: () => events.connected, epoch: () => events.epoch });
    listener.on('connected', ({ reconnected }) => {
      if (!reconnected) return;
      reconnects++;
      // Events sent while we were away are lost: catch up from the tables,
      // drop every cached view, and read everyone's views from the primary
      // until a replica has what the primary has now.
      byUser.forEach((f) => f.feed.poke());
      app.reads.wroteAll();
      app.viewCache.evictAll().catch((err: unknown) => app.log.warn({ err }, 'cache eviction failed'));
    });
    await listener.start();
  }

  /** Ends every one of `entries` whose session is no longer live (one query). */
  async function checkSessions(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const live = await app.onReadPool((pool) => findLiveSessions(pool, entries.map((e) => e.tokenHash)));
    for (const e of entries) {
      if (live.get(e.tokenHash.toString('hex')) !== e.userId) e.end();
    }
  }

  async function heartbeat(): Promise<void> {
    const entries = all();
    if (entries.length === 0) return;
    entries.forEach((e) => e.client.heartbeat());
    await checkSessions(entries);
    byUser.forEach((f) => f.feed.needsRetry && f.feed.poke());
  }
  const timer = setInterval(() => {
    heartbeat().catch((err: unknown) => app.log.warn({ err }, 'live streams: heartbeat session check failed'));
  }, options.heartbeatMs);
  timer.unref();

  app.decorate('live', {
    maxStreamsPerUser: options.maxStreamsPerUser,
    hasRoom: (userId) => forUser(userId).size < options.maxStreamsPerUser,
    add(entry) {
      const f = feedOf(entry.userId);
      f.entries.add(entry);
      f.feed.add(entry.client);
    },
    remove(entry) {
      const f = byUser.get(entry.userId);
      if (!f) return;
      f.entries.delete(entry);
      f.feed.remove(entry.client);
      if (f.entries.size === 0) byUser.delete(entry.userId);
    },
    count: () => all().length,
    enabled: () => listener !== null,
    listening: () => listener?.connected ?? false,
    reconnects: () => reconnects,
  } satisfies LiveRegistry);

  // Open streams would keep server.close() waiting: end them first.
  app.addHook('preClose', async () => {
    all().forEach((e) => e.end());
  });
  app.addHook('onClose', async () => {
    clearInterval(timer);
    await listener?.stop();
  });
}

export default fp(livePlugin, { name: 'live', fastify: '5.x', dependencies: ['db', 'auth', 'view-cache'] });
