import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { DatabaseListener } from '../events/listener';
import type { NotificationStream } from '../events/notification-stream';
import { findLiveSessions } from '../queries/users';

/**
 * Wires the process's LISTEN connection to the live streams and the view
 * cache: a notification pokes its user's streams, a conversation change
 * evicts both participants' cached views (on every instance, since each
 * instance listens), a deleted account closes its streams at once.
 *
 * One heartbeat serves every stream of the process: a comment line to each,
 * then one query that re-checks all their sessions (a logged-out or expired
 * token ends its stream), and a retry for streams whose last catch-up failed.
 */

type Entry = { userId: number; tokenHash: Buffer; stream: NotificationStream; end: () => void };

export type LiveRegistry = {
  add(entry: Entry): void;
  remove(entry: Entry): void;
  count(): number;
  /** Whether this process has a LISTEN connection at all. */
  enabled(): boolean;
  /** Whether the LISTEN connection is up right now. */
  listening(): boolean;
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
};

async function livePlugin(app: FastifyInstance, options: LiveOptions): Promise<void> {
  const byUser = new Map<number, Set<Entry>>();
  const forUser = (userId: number) => byUser.get(userId) ?? new Set<Entry>();
  const all = () => [...byUser.values()].flatMap((set) => [...set]);

  let listener: DatabaseListener | null = null;
  if (options.listenerUrl) {
    listener = new DatabaseListener({ connectionString: options.listenerUrl, log: app.log });
    listener.on('notification', ({ userId }) => forUser(userId).forEach((e) => e.stream.poke()));
    listener.on('conversation', ({ users }) => {
      app.viewCache.evictUsers(users).catch((err: unknown) => app.log.warn({ err }, 'cache eviction failed'));
    });
    listener.on('userDeleted', ({ userId }) => {
      forUser(userId).forEach((e) => e.end());
      app.viewCache.evictUsers([userId]).catch((err: unknown) => app.log.warn({ err }, 'cache eviction failed'));
    });
    listener.on('connected', ({ reconnected }) => {
      if (!reconnected) return;
      // Events sent while we were away are lost: catch up from the tables.
      all().forEach((e) => e.stream.poke());
      app.viewCache.evictLocal();
    });
    await listener.start();
  }

  async function heartbeat(): Promise<void> {
    const entries = all();
    if (entries.length === 0) return;
    entries.forEach((e) => e.stream.heartbeat());
    const live = await findLiveSessions(app.pool, entries.map((e) => e.tokenHash));
    for (const e of entries) {
      if (live.get(e.tokenHash.toString('hex')) !== e.userId) e.end();
      else if (e.stream.needsRetry) e.stream.poke();
    }
  }
  const timer = setInterval(() => {
    heartbeat().catch((err: unknown) => app.log.warn({ err }, 'live streams: heartbeat session check failed'));
  }, options.heartbeatMs);
  timer.unref();

  app.decorate('live', {
    add(entry) {
      const set = byUser.get(entry.userId) ?? new Set<Entry>();
      set.add(entry);
      byUser.set(entry.userId, set);
    },
    remove(entry) {
      const set = byUser.get(entry.userId);
      set?.delete(entry);
      if (set?.size === 0) byUser.delete(entry.userId);
    },
    count: () => all().length,
    enabled: () => listener !== null,
    listening: () => listener?.connected ?? false,
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

export default fp(livePlugin, { name: 'live', dependencies: ['view-cache'] });
