import { z } from 'zod';

/**
 * Environment variables, validated once at start-up. A bad value stops the
 * process with a readable message instead of surfacing later as a 500.
 */
/** A retention period as PostgreSQL reads an interval: "7 days", "36 hours", "90 minutes". */
const retention = z
  .string()
  .regex(/^[1-9][0-9]{0,5} (second|minute|hour|day|week)s?$/, 'a whole number and a unit, e.g. "7 days" or "36 hours"');

const configSchema = z.object({
  /** When absent, `npm start` runs an embedded PostgreSQL under DATA_DIR. */
  DATABASE_URL: z.string().url().optional(),
  /**
   * Where the LISTEN connection and the migrations connect when DATABASE_URL
   * is a pooler in transaction mode (PgBouncer): LISTEN holds its session,
   * migrations take advisory locks. Default: DATABASE_URL.
   */
  LISTEN_DATABASE_URL: z.string().url().optional(),
  MIGRATE_DATABASE_URL: z.string().url().optional(),
  /**
   * Streaming replicas for the read-only views, comma-separated; reads stay
   * read-your-writes by WAL position (src/db/replicas.ts).
   */
  DATABASE_READ_URL: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((u) => u.trim()).filter((u) => u !== ''))
    .pipe(z.array(z.string().url())),
  /** A replica whose data may be older than this takes no reads. */
  REPLICA_MAX_LAG_MS: z.coerce.number().int().min(10).max(3_600_000).default(5000),
  /** How often each replica's replayed WAL position (and the primary's) is read. */
  REPLICA_CHECK_MS: z.coerce.number().int().min(10).max(60_000).default(100),
  HOST: z.string().min(1).default('localhost'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().min(1).default('.data'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  /** The role API requests run as: no BYPASSRLS, created by ensureRoles(). */
  DATABASE_VISITOR: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain lower-case SQL identifier')
    .default('signalbox_visitor'),
  /**
   * The role the service serves as (LOGIN NOINHERIT, a member of the visitor
   * only, its sessions starting as the visitor), created by ensureRoles()
   * when missing. DATABASE_URL should name it; MIGRATE_DATABASE_URL names
   * the owner (docs/database.md, "Roles"). The embedded database is set up this way.
   */
  DATABASE_AUTHENTICATOR: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain lower-case SQL identifier')
    .default('signalbox_authenticator'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * A second pool on the primary for reads (views, stream catch-ups,
   * session lookups), so reads never wait behind writes stuck on a lock.
   */
  DATABASE_READ_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(5),
  /** How long a request waits for a free connection before 503 DATABASE_BUSY. */
  POOL_ACQUIRE_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(2000),
  /** How long a request's statement waits for a row lock before 503 DATABASE_BUSY (lock_timeout). */
  LOCK_TIMEOUT_MS: z.coerce.number().int().min(10).max(60_000).default(2000),
  /** A search's time budget (its statements are cancelled past it: 503 DATABASE_BUSY). */
  SEARCH_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(2000),
  /** A search ranks only the caller's newest this-many matches (older ones are not found). */
  SEARCH_RANK_WINDOW: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /** Requests one signed-in user may make a minute (every authenticated route); more get 429 RATE_LIMITED. */
  USER_RATE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(1200),
  /**
   * Messages one user may send a minute (POST /messages, replies included);
   * more get 429 SEND_RATE_LIMITED. Counted in Redis with CACHE_URL (every
   * instance shares it), in the instance otherwise or while Redis is away.
   * SQL a DBA runs is not counted.
   */
  SEND_RATE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(120),
  /** Exports (GET /me/export) one instance streams at once, each holding a read connection; more get 503 EXPORTS_BUSY. */
  EXPORT_MAX_CONCURRENT: z.coerce.number().int().min(1).max(100).default(1),
  /** Database calls one user may have in flight at once; more wait their turn (and at most 32 wait). */
  USER_MAX_CONCURRENT: z.coerce.number().int().min(1).max(100).default(4),
  /**
   * This instance's id in the announcements of its writes (NOTIFY payloads),
   * so that it skips exactly its own echoes; unique per process. Default:
   * host, pid and 8 random hex digits.
   */
  INSTANCE_ID: z.string().regex(/^[\x21-\x7e]{1,100}$/).optional(),
  SESSION_TTL_HOURS: z.coerce.number().positive().max(24 * 365).default(24 * 30),
  /**
   * How long an instance may keep a looked-up session in memory (0: look
   * every request's token up). Used only while the LISTEN connection is up,
   * which announces every revocation (src/auth/session-cache.ts).
   */
  SESSION_CACHE_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  SESSION_CACHE_MAX_ENTRIES: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  /** redis://… moves the conversation cache to Redis; memory otherwise. */
  CACHE_URL: z.string().url().optional(),
  /** 0 turns the view cache off (every request is a MISS); the benchmark's baseline. */
  CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  /** The memory cache's budget in bytes (UTF-16 size of keys and bodies). */
  CACHE_MAX_BYTES: z.coerce.number().int().min(1024).default(64 * 1024 * 1024),
  /** A view larger than this is answered but not cached. */
  CACHE_MAX_ENTRY_BYTES: z.coerce.number().int().min(1024).default(2 * 1024 * 1024),
  /** Starts every key in a shared store; default: derived from the database's identity. */
  CACHE_PREFIX: z.string().regex(/^[A-Za-z0-9:_.-]{1,100}$/, 'letters, digits and :_.- only').optional(),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(10 * 1024 * 1024).default(64 * 1024),
  /**
   * Socket budgets (docs/limits.md): a request's
   * headers and body must arrive within these (slow senders are cut: 408),
   * an idle keep-alive connection closes after KEEP_ALIVE_TIMEOUT_MS, and at
   * most MAX_CONNECTIONS sockets are open, MAX_CONNECTIONS_PER_ADDRESS from
   * one peer address (0: no per-address cap; behind a proxy every client
   * shares its address).
   */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /**
   * On SIGTERM, how long /readyz answers 503 before the server stops
   * accepting and drains: the load balancer's time to stop sending (its
   * readiness period). SIGINT (a terminal's Ctrl-C) does not wait.
   */
  SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
  HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  MAX_CONNECTIONS_PER_ADDRESS: z.coerce.number().int().min(0).max(1_000_000).default(1024),
  /** Wrong passwords per minute per address + account; other budgets derive from it (docs/limits.md). */
  LOGIN_RATE_LIMIT: z.coerce.number().int().positive().default(10),
  /** argon2 computations at once, and how many more may wait; beyond that 503. */
  ARGON2_MAX_CONCURRENT: z.coerce.number().int().min(1).max(64).default(2),
  ARGON2_MAX_QUEUED: z.coerce.number().int().min(0).max(10_000).default(32),
  /**
   * Fastify's trustProxy: off (default), `true` (every peer is a proxy), or
   * a comma-separated list of the proxies' addresses/CIDRs whose
   * X-Forwarded-* to trust. (Fastify 5.12 ignores hop counts: it cannot
   * check the peer, so it fails closed. A count is refused here instead.)
   */
  TRUST_PROXY: z
    .string()
    .regex(/^(true|false|[0-9a-fA-F:.\/, ]+)$/, 'true, false, or proxy addresses/CIDRs separated by commas')
    .refine((v) => !/^[0-9]+$/.test(v), 'a hop count is not supported: list the proxies\' addresses')
    .optional()
    .transform((v): boolean | string => (v === undefined || v === 'false' ? false : v === 'true' ? true : v)),
  REGISTER_RATE_LIMIT: z.coerce.number().int().positive().default(20),
  SSE_HEARTBEAT_MS: z.coerce.number().int().min(100).default(15_000),
  /**
   * How often the LISTEN connection answers a probe (select 1); one still
   * unanswered at the next probe declares it down and replaces it, so a
   * silently dead connection is noticed within twice this (0: no probes).
   */
  LISTEN_PROBE_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
  /** A stream client that lets this much pile up unread is dropped. */
  SSE_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /** Open live streams per user on one instance; one more is refused with 429. */
  SSE_MAX_STREAMS_PER_USER: z.coerce.number().int().min(1).max(1000).default(5),
  /**
   * When the retention job runs (a crontab line's five time fields, in the
   * database server's time zone as graphile-worker reads it), or `off`; each
   * instance runs the worker, graphile-worker starts each tick's job once.
   */
  PRUNE_SCHEDULE: z
    .string()
    .regex(/^(off|\S+ \S+ \S+ \S+ \S+)$/, 'five crontab time fields (e.g. "17 * * * *"), or off')
    .default('17 * * * *'),
  /** Live events older than this are pruned; a stream resuming from before them gets `reset`. */
  LIVE_EVENTS_RETENTION: retention.default('7 days'),
  /** Read notifications older than this are pruned (unread ones stay). */
  NOTIFICATIONS_RETENTION: retention.default('90 days'),
  /** Account-deletion and prune audit rows older than this are pruned. */
  AUDIT_RETENTION: retention.default('365 days'),
  /** Rows per prune batch (each batch is its own transaction). */
  PRUNE_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(10_000),
  /**
   * 1: validate every row a query returns against its zod schema and every
   * response against its route's schema (the test suite runs so). Off by
   * default: the shapes are fixed by the SQL and checked by the tests, and
   * checking them per request cost a 200-node thread a third of its CPU.
   */
  CHECK_SHAPES: z
    .enum(['0', '1', 'true', 'false'])
    .default('0')
    .transform((v) => v === '1' || v === 'true'),
  /**
   * Whether the service sets up the database at start (roles, migrations,
   * graphile-worker's schema) with MIGRATE_DATABASE_URL. Off: a deployment
   * runs `npm run migrate` as a step of its own and its instances hold only
   * the authenticator's credential; without MIGRATE_DATABASE_URL they then
   * run no retention job either (docs/database.md, "Roles").
   */
  MIGRATE_ON_START: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
});

export type Config = z.infer<typeof configSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return parsed.data;
}
