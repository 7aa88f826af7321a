import { databaseBusy, type HttpError } from '../http-errors';

/**
 * At most `max` calls at once; the rest wait in order, each at most
 * `timeoutMs`, and at most `maxQueue` of them. Used in front of each pool
 * (Slonik 47 queues for a connection without a time limit: one held lock
 * stalled every request of the instance) and per user (one user's requests
 * take at most a few connections, so nobody else waits for them).
 */
export class Gate {
  private active = 0;
  private readonly queue: { start: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(
    readonly name: string,
    readonly max: number,
    private readonly timeoutMs: number,
    private readonly onTimeout: () => HttpError,
    private readonly maxQueue = Number.POSITIVE_INFINITY,
    private readonly onFull: () => HttpError = onTimeout,
  ) {}

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Nothing running and nothing waiting (a per-user gate can be forgotten). */
  get idle(): boolean {
    return this.active === 0 && this.queue.length === 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await this.wait();
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) {
        clearTimeout(next.timer);
        next.start(); // the slot passes on: active stays the same
      } else {
        this.active--;
      }
    }
  }

  private wait(): Promise<void> {
    if (this.queue.length >= this.maxQueue) return Promise.reject(this.onFull());
    return new Promise((resolve, reject) => {
      const entry = {
        start: resolve,
        timer: setTimeout(() => {
          this.queue.splice(this.queue.indexOf(entry), 1);
          reject(this.onTimeout());
        }, this.timeoutMs),
      };
      entry.timer.unref();
      this.queue.push(entry);
    });
  }
}

/** 503 DATABASE_BUSY: no connection of `pool` came free in time. */
export const poolBusy = (pool: string, ms: number) => () =>
  databaseBusy(`no database connection (${pool}) came free within ${ms} ms; try again shortly`);
