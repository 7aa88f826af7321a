import {
  createPool,
  createTypeParserPreset,
  SchemaValidationError,
  type DatabasePool,
  type Interceptor,
} from 'slonik';
import { sqlStateOf } from '../http-errors';
import type { ReplicaSource } from './replicas';

/**
 * Validates every row of a `sql.type(schema)` query against its zod schema
 * (Slonik 47 does not do this by itself). On with CHECK_SHAPES, which the
 * tests use: there it proves that the types are a promise the database
 * keeps; in production each row's shape is fixed by its query's column
 * list, and validating it again per row was a large share of a request.
 */
export const resultParserInterceptor: Interceptor = {
  name: 'signalbox/result-parser',
  // Synchronous on purpose: no schema here refines asynchronously, and the
  // async variant costs a promise and a p-limit slot per row (a 1,000-row
  // thread spent more time in that machinery than in PostgreSQL).
  transformRow: (context, query, row) => {
    const { resultParser } = context;
    if (!resultParser) return row;
    const parsed = resultParser.safeParse(row);
    if (!parsed.success) {
      throw new SchemaValidationError(query, row, parsed.error.issues);
    }
    return parsed.data as typeof row;
  },
};

/** int8 ids and counts fit in a JS number here; refuse silently wrong ones. */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
}

const utcTimestamp = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/;

/**
 * timestamptz as an ISO-8601 UTC string with milliseconds: what the API
 * speaks. A session in UTC (the usual server setting) prints
 * "2026-11-26 21:07:06.389123+00", which is rewritten as text: building a
 * Date per value was the largest cost of decoding a 10,000-row thread.
 * Other offsets go through Date.
 */
export function parseTimestamptz(value: string): string {
  const utc = utcTimestamp.exec(value);
  if (utc) return `${utc[1]}T${utc[2]}.${`${utc[3] ?? ''}000`.slice(0, 3)}Z`;
  // "+05:30" or "+05" style offsets; JS wants "T" and "+hh:mm".
  return new Date(value.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString();
}

export type PoolOptions = {
  maximumPoolSize?: number;
  interceptors?: readonly Interceptor[];
  /** Validate every row against its query's zod schema (CHECK_SHAPES). */
  checkShapes?: boolean;
  /** How long to wait for a new connection (Slonik's default: 5 s). */
  connectionTimeoutMs?: number;
  /**
   * Told of every transaction Slonik is about to retry (a serialization
   * failure or a deadlock, SQLSTATE class 40), so that no retry hides one:
   * the server logs it at warn.
   */
  onRetry?: (retry: { sqlstate: string; sql: string }) => void;
};

/** Slonik retries a transaction whose statement failed with a class-40 SQLSTATE. */
const TRANSACTION_ROLLBACK = /^40/;

/**
 * Reports each failure Slonik will retry. Slonik 47 retries a failed
 * transaction (transactionRetryLimit) after this interceptor has seen its
 * error; a single statement outside a transaction it would retry before
 * any interceptor sees the first failure, so those retries are switched
 * off (queryRetryLimit 0): the caller gets the error instead.
 */
function retryReporter(onRetry: NonNullable<PoolOptions['onRetry']>): Interceptor {
  return {
    name: 'signalbox/retry-reporter',
    queryExecutionError: (context, query, error) => {
      const sqlstate = sqlStateOf(error);
      if (context.transactionId && sqlstate && TRANSACTION_ROLLBACK.test(sqlstate)) {
        onRetry({ sqlstate, sql: query.sql });
      }
      return null;
    },
  };
}

/** Where a connection string points, without user or password (logs, /healthz). */
export function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}`;
}

async function openPool(url: string, options: PoolOptions): Promise<DatabasePool> {
  const preset = createTypeParserPreset().filter((p) => p.name !== 'int8' && p.name !== 'timestamptz');
  return createPool(url, {
    maximumPoolSize: options.maximumPoolSize ?? 10,
    ...(options.connectionTimeoutMs ? { connectionTimeout: options.connectionTimeoutMs } : {}),
    interceptors: [
      ...(options.interceptors ?? []),
      ...(options.checkShapes ? [resultParserInterceptor] : []),
      ...(options.onRetry ? [retryReporter(options.onRetry)] : []),
    ],
    queryRetryLimit: 0,
    // Slonik's default runs DISCARD ALL whenever a connection returns to the
    // pool: an extra round trip that also throws away every cached plan,
    // including those of the PL/pgSQL trigger functions, so each insert
    // re-planned all its triggers (2-3 ms instead of well under 1). Nothing
    // here leaves session state behind: the role and the user are set with
    // set_config(…, true), which ends with the transaction, and LISTEN has
    // its own connection outside the pool.
    resetConnection: async () => {},
    typeParsers: [
      ...preset,
      { name: 'int8', parse: parseInt8 },
      { name: 'timestamptz', parse: parseTimestamptz },
    ],
  });
}

/** The pool methods that run work; each is watched for a lost backend. */
const WORK = new Set<PropertyKey>([
  'any', 'anyFirst', 'connect', 'exists', 'many', 'manyFirst', 'maybeOne', 'maybeOneFirst', 'one', 'oneFirst', 'query', 'stream', 'transaction',
]);

/**
 * A Slonik pool that replaces itself when Slonik 47 has lost part of it.
 *
 * When a connection's backend vanishes during a query (the server crashed,
 * PgBouncer restarted, the network dropped: the socket closes without an
 * error message), Slonik starts destroying the connection, waits for the
 * query, which rejects, and never finishes: the connection stays in the
 * pool as "pending destroy" for good, counted against its size, and ending
 * the pool rejects. A pool whose every connection was busy at such a moment
 * never serves again, even after the server is back (reproduced in
 * test/pool.test.ts through a TCP proxy that drops its sockets).
 *
 * So after any failed call this checks the pool's state; a connection
 * stuck pending destroy makes it open a fresh pool (once the server
 * answers: until then the next failure tries again), send all new work
 * there, and end the old one in the background, errors ignored. Work
 * already running on the old pool finishes there.
 */
export async function createDatabasePool(url: string, options: PoolOptions = {}): Promise<DatabasePool> {
  let current = await openPool(url, options);
  let replacing: Promise<void> | null = null;
  let ended = false;
  const heal = () => {
    if (replacing || ended || current.state().pendingDestroyConnections === 0) return;
    const broken = current;
    replacing = openPool(url, options)
      .then(
        (fresh) => {
          if (ended) return void fresh.end().catch(() => {});
          current = fresh;
          void broken.end().catch(() => {});
        },
        () => {}, // the server is still away: the next failure tries again
      )
      .finally(() => {
        replacing = null;
      });
  };
  // A destroy that is going to finish leaves "pending destroy" within a
  // tick or two; one that is stuck is still there a little later.
  const afterFailure = () => void setTimeout(heal, 50).unref();
  const end = async () => {
    ended = true;
    await replacing;
    // A pool that still holds a stuck connection rejects its end with
    // that connection's old error: nothing is left to close then.
    await current.end().catch((error: unknown) => {
      if (current.state().pendingDestroyConnections === 0) throw error;
    });
  };
  // One wrapper per method, made once: each call goes to the pool current
  // at that moment.
  const methods = new Map<PropertyKey, (...args: unknown[]) => unknown>([['end', end]]);
  const methodOf = (property: PropertyKey) => {
    let method = methods.get(property);
    if (!method) {
      const watched = WORK.has(property);
      method = (...args: unknown[]) => {
        const result = (Reflect.get(current, property) as (...a: unknown[]) => unknown).apply(current, args);
        if (watched && result instanceof Promise) result.catch(afterFailure);
        return result;
      };
      methods.set(property, method);
    }
    return method;
  };
  return new Proxy(current, {
    get: (_target, property) => (typeof Reflect.get(current, property) === 'function' ? methodOf(property) : Reflect.get(current, property)),
  });
}

/**
 * The streaming replicas (DATABASE_READ_URL), named for /healthz, each with
 * how to open its pool (the read router opens, ends and replaces them). A
 * replica that does not answer within a second is skipped, not waited for.
 */
export function replicaSources(urls: readonly string[], options: PoolOptions): ReplicaSource[] {
  return urls.map((url, i) => ({
    name: `replica${i + 1} ${redactUrl(url)}`,
    connect: () => createDatabasePool(url, { ...options, connectionTimeoutMs: 1000 }),
  }));
}
