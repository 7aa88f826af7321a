import type { Notification } from '../queries/notifications';

/** Where a stream writes: an HTTP response in production, a fake in tests. */
export type Sink = {
  write(chunk: string): boolean;
  readonly writableLength: number;
  /** True after a write() returned false, until 'drain'. */
  readonly writableNeedDrain: boolean;
  once(event: 'drain', listener: () => void): unknown;
};

export type StreamOptions = {
  sink: Sink;
  /** Notifications of this user after `afterId`, oldest first, at most `limit`. */
  fetch: (afterId: number, limit: number) => Promise<readonly Notification[]>;
  /** The last notification id the client has (Last-Event-ID, or the newest at connect). */
  lastId: number;
  /** A client that lets this much pile up unread is dropped, not buffered forever. */
  maxBufferedBytes: number;
  onError: (error: unknown) => void;
  /** Called once when the stream gives up on its client. */
  onDrop: (reason: string) => void;
  batchSize?: number;
};

/**
 * One client's server-sent-event stream of notifications. The database is
 * the source: an event, a reconnect of the LISTEN connection or a new
 * client all just "poke" the stream, which then sends every notification
 * after the last id it sent, in id order. Pokes that arrive while a catch-up
 * runs fold into one more pass, so nothing is sent twice or out of order and
 * a burst of events costs one query per pass, not one per event.
 */
export class NotificationStream {
  private lastId: number;
  private running = false;
  private again = false;
  private closed = false;
  private readonly batchSize: number;
  private stalledBeats = 0;
  private failed = false;

  constructor(private readonly options: StreamOptions) {
    this.lastId = options.lastId;
    this.batchSize = options.batchSize ?? 100;
  }

  get lastSentId(): number {
    return this.lastId;
  }

  /** The last catch-up failed (database away); the next heartbeat retries it. */
  get needsRetry(): boolean {
    return this.failed;
  }

  poke(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.catchUp();
  }

  /**
   * Every 15 s: a comment line keeps proxies from timing the stream out, and
   * a client whose buffer has not drained over two beats is dropped (a stuck
   * catch-up would otherwise wait for 'drain' forever).
   */
  heartbeat(): void {
    if (this.closed) return;
    this.stalledBeats = this.options.sink.writableNeedDrain ? this.stalledBeats + 1 : 0;
    if (this.stalledBeats >= 2) {
      this.closed = true;
      this.options.onDrop('client stopped reading');
      return;
    }
    this.send(': heartbeat\n\n');
  }

  close(): void {
    this.closed = true;
  }

  private async catchUp(): Promise<void> {
    try {
      this.failed = false;
      do {
        this.again = false;
        let batch: readonly Notification[];
        do {
          batch = await this.options.fetch(this.lastId, this.batchSize);
          for (const n of batch) {
            if (this.closed) return;
            this.send(`id: ${n.id}\nevent: notification\ndata: ${JSON.stringify(n)}\n\n`);
            this.lastId = n.id;
          }
          // Respect backpressure: fetch the next batch only once it drained.
          if (!this.closed && this.options.sink.writableNeedDrain) {
            await new Promise<void>((resolve) => this.options.sink.once('drain', resolve));
          }
        } while (batch.length === this.batchSize && !this.closed);
      } while (this.again && !this.closed);
    } catch (error) {
      // The next poke (event, heartbeat or reconnect) retries from lastId.
      this.failed = true;
      this.options.onError(error);
    } finally {
      this.running = false;
    }
  }

  private send(chunk: string): void {
    if (this.closed) return;
    this.options.sink.write(chunk);
    if (this.options.sink.writableLength > this.options.maxBufferedBytes) {
      this.closed = true;
      this.options.onDrop('client is not reading');
    }
  }
}
