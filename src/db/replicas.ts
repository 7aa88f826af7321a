import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { replicaCannotServe } from './errors';

/**
 * Where a read-only view is read: a streaming replica when one is healthy
 * and has replayed everything its reader must see, the primary otherwise.
 *
 * Read-your-writes works on WAL positions, not on delays. Every write of a
 * request marks the users it touched (the caller and everyone whose views
 * its triggers changed, plugins/db.ts; other instances' writes arrive as
 * the same users through LISTEN, plugins/live.ts). A marked user reads from
 * the primary until the next check, which reads the primary's WAL position
 * *after* the mark, hence after the write's commit, and makes it that
 * user's floor; from then on a replica serves the user only once its
 * `pg_last_wal_replay_lsn()` has reached the floor. A floor every serving
 * replica has passed is dropped and folded into one global floor, which
 * also keeps a replica that returns from an outage away until it has
 * caught up with what was dropped.
 *
 * Each check (every `checkMs`) samples the primary's position and each
 * replica's replayed one. A replica's lag is how long ago the primary was
 * at the newest sampled position the replica has replayed: an upper bound
 * on how old its data can be, zero when it has everything. A replica that
 * does not answer, is not in recovery, or lags more than `maxLagMs` takes
 * no reads; a read that fails on one is repeated on the primary.
 *
 * The router owns each replica's pool. One that failed to reach its
 * replica is ended, so nothing holds connections to a server that is gone,
 * and the check that finds the replica again opens a new one (a pool that
 * lost backends mid-query also heals itself: src/db/pool.ts).
 */

export type ReplicaStatus = 'ok' | 'lagging' | 'down';

export type ReplicaReport = {
  name: string;
  status: ReplicaStatus;
  /** Upper bound on the age of its data in ms; null when unknown (down). */
  lagMs: number | null;
  replayLsn: string | null;
  /** Read views it has answered since this process started. */
  reads: number;
};

/** A replica as configured: its name and how to open a pool on it. */
export type ReplicaSource = { name: string; connect: () => Promise<DatabasePool> };

/** A replica chosen for a read: the pool to run it on. */
export type Replica = { name: string; pool: DatabasePool };

type ReplicaState = {
  name: string;
  connect: () => Promise<DatabasePool>;
  /** null while there is none (not yet opened, or ended after a failure). */
  pool: DatabasePool | null;
  status: ReplicaStatus;
  replay: bigint | null;
  lagMs: number | null;
  reads: number;
};

export type ReadRouterOptions = {
  primary: DatabasePool;
  replicas: readonly ReplicaSource[];
  maxLagMs: number;
  checkMs: number;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Floors kept per user before they are folded into the global floor. */
  maxFloors?: number;
};

/** 'X/Y' (hex halves of a 64-bit WAL position) as a number that compares. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new Error(`not a WAL position: ${text}`);
  return (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

const primaryRow = z.object({ lsn: z.string() });
const replicaRow = z.object({ recovering: z.boolean(), lsn: z.string().nullable() });

export class ReadRouter {
  private readonly replicas: ReplicaState[];
  /** Users written since the last check started: primary only. */
  private pending = new Set<number>();
  /** Users the running check is flooring: primary only until it has. */
  private resolving = new Set<number>();
  /** The same for everyone at once (wroteAll), pending and being floored. */
  private allPending = false;
  private allResolving = false;
  private readonly floors = new Map<number, bigint>();
  private globalFloor = 0n;
  /** The primary's sampled positions, oldest first. */
  private samples: { at: number; lsn: bigint }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private next = 0;

  constructor(private readonly options: ReadRouterOptions) {
    this.replicas = options.replicas.map((r) => ({ name: r.name, connect: r.connect, pool: null, status: 'down', replay: null, lagMs: null, reads: 0 }));
  }

  get enabled(): boolean {
    return this.replicas.length > 0;
  }

  /** Runs the first check, then one every checkMs. */
  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.checkMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.checking;
    await Promise.all(this.replicas.map((r) => this.retire(r)));
  }

  /** These users' data changed (a committed write): read them from the primary until a replica has it. */
  wrote(userIds: Iterable<number>): void {
    if (!this.enabled) return;
    for (const id of userIds) this.pending.add(id);
  }

  /**
   * Anybody may have been written (announcements were lost: the LISTEN
   * connection was down): every user reads from the primary until a
   * replica has replayed what the primary had at the next check.
   */
  wroteAll(): void {
    if (this.enabled) this.allPending = true;
  }

  /** The replica to read `userId`'s views from, or null for the primary. */
  replicaFor(userId: number): Replica | null {
    if (this.allPending || this.allResolving || this.pending.has(userId) || this.resolving.has(userId)) return null;
    const floor = this.floors.get(userId) ?? 0n;
    const needed = floor > this.globalFloor ? floor : this.globalFloor;
    for (let i = 0; i < this.replicas.length; i++) {
      const replica = this.replicas[(this.next + i) % this.replicas.length]!;
      if (replica.status === 'ok' && replica.pool && replica.replay !== null && replica.replay >= needed) {
        this.next = (this.next + i + 1) % this.replicas.length;
        return { name: replica.name, pool: replica.pool };
      }
    }
    return null;
  }

  /** `replica` answered a read view. */
  served(replica: Replica): void {
    const state = this.replicas.find((r) => r.pool === replica.pool);
    if (state) state.reads++;
  }

  /**
   * A read on `replica` failed to reach it: no more reads there, and its
   * pool is ended; the check that reaches the replica again opens a new one.
   */
  failed(replica: Replica, err: unknown): void {
    const state = this.replicas.find((r) => r.pool === replica.pool);
    if (!state) return; // a read on a pool already replaced
    state.status = 'down';
    state.lagMs = null;
    this.options.log?.warn({ err, replica: state.name }, 'read replica failed; reading from the primary');
    void this.retire(state);
  }

  /** Ends the replica's pool, if any; errors of a broken pool's end are expected and ignored. */
  private async retire(replica: ReplicaState): Promise<void> {
    const pool = replica.pool;
    replica.pool = null;
    await pool?.end().catch(() => {});
  }

  report(): ReplicaReport[] {
    return this.replicas.map((r) => ({
      name: r.name,
      status: r.status,
      lagMs: r.lagMs,
      replayLsn: r.replay === null ? null : formatLsn(r.replay),
      reads: r.reads,
    }));
  }

  /** One check; concurrent callers share it. */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  private async runCheck(): Promise<void> {
    // Marks made before the primary is asked are covered by its answer.
    const marked = this.pending;
    const all = this.allPending;
    this.pending = new Set();
    this.resolving = marked;
    this.allPending = false;
    this.allResolving = all;
    let lsn: bigint;
    try {
      lsn = parseLsn(await this.options.primary.oneFirst(sql.type(primaryRow)`select pg_current_wal_lsn()::text as lsn`));
    } catch (err) {
      marked.forEach((id) => this.pending.add(id));
      if (all) this.allPending = true;
      this.options.log?.warn({ err }, 'replica check: the primary did not answer');
      return;
    } finally {
      this.resolving = new Set();
      this.allResolving = false;
    }
    // Everyone's floor: no replica serves anybody before it has this.
    if (all && lsn > this.globalFloor) this.globalFloor = lsn;
    const now = Date.now();
    for (const id of marked) {
      const floor = this.floors.get(id);
      if (floor === undefined || floor < lsn) this.floors.set(id, lsn);
    }
    this.samples.push({ at: now, lsn });
    // Keep what measures lags up to twice the limit, and always the newest.
    const keepAfter = now - 2 * this.options.maxLagMs;
    while (this.samples.length > 1 && this.samples[1]!.at <= keepAfter) this.samples.shift();

    await Promise.all(this.replicas.map((replica) => this.checkReplica(replica)));
    this.dropPassedFloors();
  }

  private async checkReplica(replica: ReplicaState): Promise<void> {
    const before = replica.status;
    try {
      replica.pool ??= await replica.connect();
      const row = await replica.pool.one(
        sql.type(replicaRow)`select pg_is_in_recovery() as recovering, pg_last_wal_replay_lsn()::text as lsn`,
      );
      if (!row.recovering || row.lsn === null) throw new Error('not a streaming replica (not in recovery)');
      replica.replay = parseLsn(row.lsn);
      replica.lagMs = this.lagOf(replica.replay);
      replica.status = replica.lagMs <= this.options.maxLagMs ? 'ok' : 'lagging';
    } catch (err) {
      replica.status = 'down';
      replica.lagMs = null;
      if (replicaCannotServe(err)) await this.retire(replica);
      if (before !== 'down') this.options.log?.warn({ err, replica: replica.name }, 'read replica unreachable; reading from the primary');
      return;
    }
    if (before !== replica.status) this.options.log?.info({ replica: replica.name, lagMs: replica.lagMs }, `read replica ${replica.status}`);
  }

  /** How long ago the primary was at the newest sampled position `replay` covers (Infinity: older than all samples). */
  private lagOf(replay: bigint): number {
    for (let i = this.samples.length - 1; i >= 0; i--) {
      const sample = this.samples[i]!;
      if (sample.lsn <= replay) return Date.now() - sample.at;
    }
    return Number.POSITIVE_INFINITY;
  }

  private dropPassedFloors(): void {
    const serving = this.replicas.filter((r) => r.status === 'ok' && r.replay !== null);
    if (serving.length > 0) {
      const passed = serving.reduce((min, r) => (r.replay! < min ? r.replay! : min), serving[0]!.replay!);
      if (passed > this.globalFloor) this.globalFloor = passed;
    }
    for (const [id, floor] of this.floors) if (floor <= this.globalFloor) this.floors.delete(id);
    // Too many distinct writers between checks: one floor for everyone (safe: higher is stricter).
    if (this.floors.size > (this.options.maxFloors ?? 100_000)) {
      for (const floor of this.floors.values()) if (floor > this.globalFloor) this.globalFloor = floor;
      this.floors.clear();
    }
  }
}
