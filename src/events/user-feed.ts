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
  private readonly waiters = new Set<() => void>();

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

  /** Its client has not read what was written (the sink waits for 'drain'). */
  get backedUp(): boolean {
    return !this.closedFlag && this.sink.writableNeedDrain;
  }

  /** Calls `fn` once the sink has drained, or the client closed (once per stall, however often asked). */
  whenDrained(fn: () => void): void {
    if (!this.backedUp) return fn();
    if (this.waiters.size === 0) this.sink.once('drain', () => this.release());
    this.waiters.add(fn);
  }

  close(): void {
    this.closedFlag = true;
    this.release();
  }

  private release(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    waiting.forEach((fn) => fn());
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
  /** One function, so a stalled client holds one callback however many passes it sits out. */
  private readonly pokeOnDrain = () => this.poke();

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
        // A client that has not read what it was sent sits this pass out
        // and asks for another once it drains (from its own cursor): a
        // stalled tab must not hold up the same user's healthy streams
        // (it used to, until the heartbeat dropped it: ~20 s).
        const sitOut = (c: StreamClient) => {
          if (!c.backedUp) return false;
          c.whenDrained(this.pokeOnDrain);
          return true;
        };
        let members = [...this.clients].filter((c) => !c.closed && !sitOut(c));
        if (members.length === 0) break;
        let from = Math.min(...members.map((c) => c.cursor));
        let batch: readonly StreamEvent[];
        do {
          batch = await this.options.fetch(from, this.batchSize);
          for (const n of batch) for (const c of members) c.deliver(n);
          const last = batch[batch.length - 1];
          if (last) from = last.seq;
          // Backpressure per client: the next batch goes to those that
          // read this one; the others resume when they drain.
          members = members.filter((c) => !c.closed && !sitOut(c));
        } while (batch.length === this.batchSize && members.length > 0);
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
