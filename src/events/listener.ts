import { EventEmitter } from 'node:events';
import pg from 'pg';
import { z } from 'zod';

/**
 * One dedicated LISTEN connection per process (never a pooled one: a pooled
 * connection would hand its LISTEN to whoever borrows it next). The triggers
 * send small id-only payloads; NOTIFY is delivered on commit only, so a
 * rolled-back write never announces anything.
 *
 * When the connection drops (database restart, pg_terminate_backend) it
 * reconnects with capped exponential backoff and emits `connected` with
 * `{ reconnected: true }`: NOTIFYs sent while it was away are lost, so
 * consumers catch up from the tables then.
 *
 * A connection can also die without a word: a NAT or firewall forgets it, a
 * network partition, a proxy that stops forwarding. Nothing arrives, and
 * nothing says so (TCP keep-alive takes minutes to notice, if it is on at
 * all). So every `probeMs` the listener asks its own connection `select 1`;
 * a probe still unanswered at the next tick declares the connection down
 * (at most 2 × probeMs after it died): `connected` turns false at once (the
 * session cache stops trusting revocations it may have missed), the socket
 * is destroyed, and a new connection replaces it, whose `connected`
 * `{ reconnected: true }` makes the consumers catch up and move the view
 * cache's generation.
 */

export const CHANNELS = {
  notifications: 'signalbox_notifications',
  conversations: 'signalbox_conversations',
  users: 'signalbox_users',
  sessions: 'signalbox_sessions',
} as const;

// `instance`: the API instance whose transaction announced it (migration
// 000017), null for psql and jobs.
const instance = z.string().nullish().transform((v) => v ?? null);
// {userId}: wake that user's streams; they read what is new from the table.
const notificationEvent = z.object({ userId: z.number().int() });
const conversationEvent = z.object({ users: z.array(z.number().int()), instance });
const userEvent = z.object({ deletedUserId: z.number().int() });
// Sessions of these users were deleted or changed (migration 000007).
const sessionEvent = z.union([z.object({ users: z.array(z.number().int()) }), z.object({ all: z.literal(true) })]);

export type ListenerEvents = {
  notification: [z.infer<typeof notificationEvent>];
  /** `instance`: the API instance that wrote it (null: psql, a job). */
  conversation: [z.infer<typeof conversationEvent>];
  userDeleted: [{ userId: number }];
  sessionsRevoked: [{ users: number[] | 'all' }];
  connected: [{ reconnected: boolean }];
};

export type ListenerOptions = {
  connectionString: string;
  log?: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void };
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** How often the connection is probed (0: never); an unanswered probe declares it down at the next one. */
  probeMs?: number;
};

/**
 * Ends a connection: end() says goodbye and waits for the server's answer,
 * which a dead connection never gives, so after a second its socket goes.
 */
async function close(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => true,
    () => false,
  );
  const waited = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 1000)));
  const clean = await Promise.race([ended, waited]);
  clearTimeout(timer);
  if (!clean) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

export class DatabaseListener extends EventEmitter<ListenerEvents> {
  private client: pg.Client | null = null;
  private stopped = false;
  private everConnected = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private connections = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private probeInFlight = false;

  constructor(private readonly options: ListenerOptions) {
    super();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  /** Counts connections: a consumer that saw one epoch missed nothing while it stays the same. */
  get epoch(): number {
    return this.connections;
  }

  /** Resolves once the first connection is listening. */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopProbing();
    const client = this.client;
    this.client = null;
    if (client) await close(client);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: 'signalbox-listener',
      keepAlive: true,
    });
    client.on('notification', (message) => this.dispatch(message.channel, message.payload));
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, undefined));
    try {
      await client.connect();
      await client.query(Object.values(CHANNELS).map((c) => `listen ${c}`).join('; '));
    } catch (error) {
      client.removeAllListeners();
      await client.end().catch(() => {});
      throw error;
    }
    if (this.stopped) {
      await client.end();
      return;
    }
    this.client = client;
    this.connections++;
    this.startProbing(client);
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.attempt = 0;
    if (reconnected) this.options.log?.info({}, 'LISTEN connection re-established');
    this.emit('connected', { reconnected });
  }

  private startProbing(client: pg.Client): void {
    const every = this.options.probeMs ?? 2000;
    if (every <= 0) return;
    this.probeInFlight = false;
    this.probeTimer = setInterval(() => {
      if (this.client !== client) return;
      if (this.probeInFlight) {
        this.lost(client, new Error(`the LISTEN connection did not answer a probe within ${every} ms`));
        return;
      }
      this.probeInFlight = true;
      client.query('select 1').then(
        () => {
          if (this.client === client) this.probeInFlight = false;
        },
        () => {}, // a failed query: the connection's 'error' or 'end' says the rest
      );
    }, every);
    this.probeTimer.unref();
  }

  private stopProbing(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }

  private lost(client: pg.Client, error: Error | undefined): void {
    if (this.client !== client) return; // an old client's late event
    this.client = null;
    this.stopProbing();
    client.removeAllListeners('notification');
    void close(client);
    if (this.stopped) return;
    this.options.log?.warn({ err: error }, 'LISTEN connection lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const min = this.options.minBackoffMs ?? 100;
    const max = this.options.maxBackoffMs ?? 5000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.stopped) return;
      this.connect().catch((error: Error) => {
        this.options.log?.warn({ err: error }, 'LISTEN reconnect failed');
        if (!this.stopped) this.scheduleReconnect();
      });
    }, delay);
    this.retryTimer.unref();
  }

  private dispatch(channel: string, payload: string | undefined): void {
    let data: unknown;
    try {
      data = JSON.parse(payload ?? '');
    } catch {
      return;
    }
    if (channel === CHANNELS.notifications) {
      const parsed = notificationEvent.safeParse(data);
      if (parsed.success) this.emit('notification', parsed.data);
    } else if (channel === CHANNELS.conversations) {
      const parsed = conversationEvent.safeParse(data);
      if (parsed.success) this.emit('conversation', parsed.data);
    } else if (channel === CHANNELS.users) {
      const parsed = userEvent.safeParse(data);
      if (parsed.success) this.emit('userDeleted', { userId: parsed.data.deletedUserId });
    } else if (channel === CHANNELS.sessions) {
      const parsed = sessionEvent.safeParse(data);
      if (parsed.success) this.emit('sessionsRevoked', { users: 'all' in parsed.data ? 'all' : parsed.data.users });
    }
  }
}
