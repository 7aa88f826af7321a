import type { StreamEvent, StreamEventType } from '../queries/notifications';

/**
 * Live delivery of one user's stream events (notifications and live
 * conversation events) to that user's open streams in this process.
 *
 * The database is the source and `seq` is the cursor: per receiver it
 * increases in commit order (the notification trigger numbers under a lock
 * held to commit), so "everything with seq above the last one sent" can
 * neither skip nor repeat. An event, a reconnect of the LISTEN connection or
 * a new client just "pokes" the feed; one catch-up query then serves every
 * stream of the user, from the lowest cursor among them, and each stream
 * takes what is above its own cursor. Pokes during a catch-up fold into one
 * more pass, so a burst of events costs one query per pass, not one per
 * event or per stream.
 */

/** Where a stream writes: an HTTP response in production, a fake in tests. */
export type Sink = {
  write(chunk: string): boolean;
  readonly writableLength: number;
  /** True after a write() returned false, until 'drain'. */
  readonly writableNeedDrain: boolean;
  once(event: 'drain', listener: () => void): unknown;
};

/** The SSE `id:` of a cursor. The `s` tells it apart from the notification ids earlier versions sent. */
export const eventId = (seq: number) => `s${seq}`;

/** One open stream: its cursor, its sink and its liveness. */
export class StreamClient {
  private closedFlag = false;
  private stalledBeats = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly sink: Sink,
    /** The last seq this client has. */
    public cursor: number,
    private readonly options: {
      /** A client that lets this much pile up unread is dropped, not buffered forever. */
      maxBufferedBytes: number;
      /** The event types this client asked for (?types=); all when absent. */
      types?: ReadonlySet<StreamEventType> | undefined;
      /** Called once when the stream gives up on its client. */
      onDrop: (reason: string) => void;
    },
  ) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  /**
   * Sends `e` unless this client already has it. An event of a type the
   * client did not ask for, or whose messages are all gone, moves its cursor
   * without being sent: a reconnect with the last id it got skips it again.
   */
  deliver(e: StreamEvent): void {
    if (this.closedFlag || e.seq <= this.cursor) return;
    // No data: its messages were deleted since; the cursor moves past it.
    if (e.data !== null && (!this.options.types || this.options.types.has(e.type))) {
      this.send(`id: ${eventId(e.seq)}\nevent: ${e.type}\ndata: ${e.data}\n\n`);
    }
    this.cursor = e.seq;
  }

  /** A named event with no cursor (e.g. `reset`). */
  event(name: string, data: unknown): void {
    this.send(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /**
   * Every heartbeat: a comment line keeps proxies from timing the stream
   * out, and a client whose buffer has not drained over two beats is
   * dropped (a catch-up waiting for its 'drain' would otherwise wait
   * forever, and hold up the user's other streams).
   */
  heartbeat(): void {
    if (this.closedFlag) return;
    this.stalledBeats = this.sink.writableNeedDrain ? this.stalledBeats + 1 : 0;
    if (this.stalledBeats >= 2) return this.drop('client stopped reading');
    this.send(': heartbeat\n\n');
  }

  /** Resolves once the sink has drained, or the client closed. */
  drained(): Promise<void> {
    if (this.closedFlag || !this.sink.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.sink.once('drain', () => this.release());
    });
  }

  close(): void {
    this.closedFlag = true;
    this.release();
  }

  private release(): void {
    this.waiters.splice(0).forEach((resolve) => resolve());
  }

  private drop(reason: string): void {
    this.close();
    this.options.onDrop(reason);
  }

  private send(chunk: string): void {
    if (this.closedFlag) return;
    this.sink.write(chunk);
    if (this.sink.writableLength > this.options.maxBufferedBytes) this.drop('client is not reading');
  }
}

export type FeedOptions = {
  /** The user's stream events with seq above `afterSeq`, in seq order, at most `limit`. */
  fetch: (afterSeq: number, limit: number) => Promise<readonly StreamEvent[]>;
  onError: (error: unknown) => void;
  batchSize?: number;
};

/** All open streams of one user in this process, fed by one catch-up at a time. */
export class UserFeed {
  private readonly clients = new Set<StreamClient>();
  private running = false;
  private again = false;
  private failed = false;
  private readonly batchSize: number;

  constructor(private readonly options: FeedOptions) {
    this.batchSize = options.batchSize ?? 100;
  }

  get size(): number {
    return this.clients.size;
  }

  /** The last catch-up failed (database away); the next heartbeat retries it. */
  get needsRetry(): boolean {
    return this.failed;
  }

  /** Attaches a client and catches it up from its own cursor. */
  add(client: StreamClient): void {
    this.clients.add(client);
    this.poke();
  }

  remove(client: StreamClient): void {
    this.clients.delete(client);
  }

  poke(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.catchUp();
  }

  private async catchUp(): Promise<void> {
    try {
      this.failed = false;
      do {
        this.again = false;
        // The clients of this pass, fixed at its start: one added meanwhile
        // must not jump past what lies between its cursor and this pass's
        // position; its add() asked for another pass, which starts from it.
        const members = [...this.clients].filter((c) => !c.closed);
        if (members.length === 0) break;
        let from = Math.min(...members.map((c) => c.cursor));
        let batch: readonly StreamEvent[];
        do {
          batch = await this.options.fetch(from, this.batchSize);
          for (const n of batch) for (const c of members) c.deliver(n);
          const last = batch[batch.length - 1];
          if (last) from = last.seq;
          // Respect backpressure: fetch the next batch once every client drained.
          await Promise.all(members.map((c) => c.drained()));
        } while (batch.length === this.batchSize && members.some((c) => !c.closed));
      } while (this.again);
    } catch (error) {
      // The next poke (event, heartbeat or reconnect) retries from the cursors.
      this.failed = true;
      this.options.onError(error);
    } finally {
      this.running = false;
    }
  }
}
