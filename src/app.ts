import crypto from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { DatabasePool } from 'slonik';
import type { ZodTypeAny } from 'zod';
import { minuteBudget } from './budgets';
import { redisWithLocalFallback } from './cache/rate-limit-store';
import type { RedisCacheClient } from './cache/redis-store';
import type { Config } from './config';
import type { ReplicaSource } from './db/replicas';
import { rateLimited } from './http-errors';
import { describeService } from './openapi';
import { deploymentIdentity } from './queries/deployment';
import rateLimit from '@fastify/rate-limit';
import authPlugin from './plugins/auth';
import cachePlugin from './plugins/cache';
import dbPlugin from './plugins/db';
import errorsPlugin from './plugins/errors';
import strictJson from './plugins/strict-json';
import { capConnectionsPerAddress, clientErrorHandler } from './sockets';
import livePlugin from './plugins/live';
import passwordsPlugin from './plugins/passwords';
import metricsPlugin from './plugins/metrics';
import webPlugin from './plugins/web';
import authRoutes from './routes/auth';
import conversationRoutes from './routes/conversations';
import groupRoutes from './routes/groups';
import moderationRoutes from './routes/moderation';
import healthRoutes from './routes/health';
import messageRoutes from './routes/messages';
import notificationRoutes from './routes/notifications';
import searchRoutes from './routes/search';
import streamRoutes from './routes/stream';
import userRoutes from './routes/users';

declare module 'fastify' {
  interface FastifyReply {
    /** Sends a body that is already JSON text (built by PostgreSQL). */
    sendJson(body: string): FastifyReply;
  }
}

export type AppOptions = {
  config: Config;
  pool: DatabasePool;
  /** A second pool on the primary for reads (DATABASE_READ_POOL_SIZE); `pool` when omitted. */
  readPool?: DatabasePool;
  logger?: FastifyServerOptions['logger'];
  /** The shared store (Redis) for the view cache and the rate limits; memory when omitted. */
  cacheClient?: RedisCacheClient | undefined;
  /** Connection string for the LISTEN connection (live streams, cross-instance eviction). */
  listenerUrl?: string;
  /** Streaming replicas for the read-only views (DATABASE_READ_URL); the app opens and ends their pools. */
  replicas?: readonly ReplicaSource[];
};

/**
 * The process's logger: JSON lines (one object per line, for a collector),
 * or, when stdout is a terminal, pino-pretty's readable lines.
 */
export function loggerOptions(level: string, terminal: boolean): NonNullable<FastifyServerOptions['logger']> {
  return terminal
    ? { level, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
    : { level };
}

/** A request id: the client's X-Request-Id when it is a plain token, else a new UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : crypto.randomUUID();
}

/**
 * Builds the Fastify application without listening, so tests drive it with
 * app.inject() and server.ts owns the process concerns.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? { level: config.LOG_LEVEL },
    bodyLimit: config.BODY_LIMIT_BYTES,
    // X-Forwarded-For/-Proto only from the proxies TRUST_PROXY names (off by
    // default): rate limits key on the client address, the cookie's Secure
    // flag follows the protocol.
    trustProxy: config.TRUST_PROXY,
    // Socket budgets: a request (headers and body) that has not arrived in
    // time is cut with 408, so slow senders cannot hold sockets forever;
    // Node checks them every second instead of every 30 s. A live stream is
    // a response, not a request: these do not touch it.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: Math.min(1000, config.REQUEST_TIMEOUT_MS),
    },
    clientErrorHandler,
    // X-Request-Id: the caller's, when it is a plain token (1-128 of
    // [A-Za-z0-9._:-]), else a new UUID; in every log line as requestId,
    // echoed in the answer and every error body, and carried into the
    // database as application_name (src/db/transaction.ts).
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(req.headers['x-request-id']),
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
  }).withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Set on SIGTERM (server.ts): /readyz answers 503 from then on.
  app.decorate('draining', false);
  app.server.maxConnections = config.MAX_CONNECTIONS;
  capConnectionsPerAddress(app.server, config.MAX_CONNECTIONS_PER_ADDRESS);

  app.setValidatorCompiler(validatorCompiler);
  // JSON only: Fastify also parses text/plain by default, which would turn a
  // wrong media type into a 400 about the body instead of a 415. And JSON
  // that is not well-formed text is refused, not altered (strict-json).
  app.removeContentTypeParser(['text/plain', 'application/json']);
  await app.register(strictJson);
  // Responses are validated against their route's schema with CHECK_SHAPES
  // (the tests); otherwise serialised as they are: their shape is fixed by
  // the queries' column lists, and the zod pass over every response (a
  // 200-node thread is a recursive schema) was the largest CPU cost of a
  // thread request. Request inputs are always validated.
  app.setSerializerCompiler(config.CHECK_SHAPES ? serializerCompiler : () => (data) => JSON.stringify(data));
  // A body PostgreSQL already wrote as JSON goes out as it is; with
  // CHECK_SHAPES it is parsed and checked against the route's schema first,
  // strictly: zod drops a field its schema does not name, which in
  // production would go out all the same, so such a field fails the tests.
  app.decorateReply('sendJson', function (this: FastifyReply, body: string) {
    if (!config.CHECK_SHAPES) return this.type('application/json; charset=utf-8').send(body);
    const data: unknown = JSON.parse(body);
    const schema = (this.routeOptions.schema?.response as Record<number, ZodTypeAny> | undefined)?.[this.statusCode];
    if (schema && !isDeepStrictEqual(schema.parse(data), data)) {
      throw new Error(`${this.request.method} ${this.routeOptions.url}: PostgreSQL's JSON has fields the response schema does not name`);
    }
    return this.send(data);
  });

  await app.register(errorsPlugin);
  await app.register(dbPlugin, {
    pool: options.pool,
    readPool: options.readPool,
    acquireTimeoutMs: config.POOL_ACQUIRE_TIMEOUT_MS,
    lockTimeoutMs: config.LOCK_TIMEOUT_MS,
    userMaxConcurrent: config.USER_MAX_CONCURRENT,
    instanceId: config.INSTANCE_ID,
    visitorRole: config.DATABASE_VISITOR,
    replicas: options.replicas ?? [],
    replicaMaxLagMs: config.REPLICA_MAX_LAG_MS,
    replicaCheckMs: config.REPLICA_CHECK_MS,
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'signalbox',
        description: 'A database-first messaging backend. Errors: {statusCode, error, message, code, details?}.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
    },
    transform: jsonSchemaTransform,
    // What every route shares, every error code, descriptions (src/openapi.ts).
    transformObject: (document) =>
      'openapiObject' in document ? describeService(document.openapiObject as Record<string, unknown>) : document.swaggerObject,
  });
  await app.register(webPlugin);
  // Swagger UI brings inline scripts: it sets its own, hashed CSP on /docs.
  // Its bundle also injects <style> elements at run time, which no hash can
  // name (the browser logged a CSP error on every visit): styles on /docs
  // only may be inline ('unsafe-inline' is void beside a hash, so the
  // hashes go). Scripts stay hashed.
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/style-src [^;]*/, "style-src 'self' 'unsafe-inline'"),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(authPlugin, {
    sessionCacheSeconds: config.SESSION_CACHE_SECONDS,
    sessionCacheMaxEntries: config.SESSION_CACHE_MAX_ENTRIES,
  });
  // Every key this service keeps in a shared store starts with this.
  const prefix = config.CACHE_PREFIX ?? `signalbox:${await deploymentIdentity(options.pool)}`;
  await app.register(cachePlugin, {
    ttlSeconds: config.CACHE_TTL_SECONDS,
    client: options.cacheClient,
    prefix,
    maxBytes: config.CACHE_MAX_BYTES,
    maxEntryBytes: config.CACHE_MAX_ENTRY_BYTES,
  });
  await app.register(livePlugin, {
    listenerUrl: options.listenerUrl,
    heartbeatMs: config.SSE_HEARTBEAT_MS,
    listenProbeMs: config.LISTEN_PROBE_MS,
    maxStreamsPerUser: config.SSE_MAX_STREAMS_PER_USER,
  });
  // Limits are opted into per route (password checks, sign-ups); nothing
  // else is limited globally. With a shared store the counters are shared by
  // every instance, under this deployment's prefix; a call Redis fails is
  // counted in this process instead (the limits never switch off).
  let fallbackLogged = 0;
  await app.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(options.cacheClient
      ? {
          store: redisWithLocalFallback(options.cacheClient.redis, `${prefix}:rate-limit:`, (err) => {
            if (Date.now() - fallbackLogged < 10_000) return;
            fallbackLogged = Date.now();
            app.log.warn({ err }, 'rate limits: Redis failed; counting in this process until it is back');
          }),
        }
      : {}),
  });
  await app.register(passwordsPlugin, {
    failuresPerAccountAndAddress: config.LOGIN_RATE_LIMIT,
    maxConcurrent: config.ARGON2_MAX_CONCURRENT,
    maxQueued: config.ARGON2_MAX_QUEUED,
  });
  await app.register(metricsPlugin);

  await app.register(healthRoutes);
  await app.register(authRoutes, {
    sessionTtlHours: config.SESSION_TTL_HOURS,
    registerRateLimit: config.REGISTER_RATE_LIMIT,
  });
  // Everything below requires a valid session.
  await app.register(async (protectedScope) => {
    protectedScope.addHook('onRequest', protectedScope.authenticate);
    // Each user's request budget (USER_RATE_LIMIT a minute), in the shared
    // store: one user's flood is refused with 429 before it costs anyone a
    // query. USER_MAX_CONCURRENT bounds what the admitted ones hold.
    const perUser = minuteBudget(protectedScope, config.USER_RATE_LIMIT, (request) => `user:${request.userId}`);
    protectedScope.addHook('onRequest', async (request) => {
      const wait = await perUser.spend(request);
      if (wait !== null) throw rateLimited(`more than ${config.USER_RATE_LIMIT} requests a minute; try again in ${wait} s`, wait);
    });
    await protectedScope.register(userRoutes, { exportMaxConcurrent: config.EXPORT_MAX_CONCURRENT });
    await protectedScope.register(messageRoutes, { sendRateLimit: config.SEND_RATE_LIMIT });
    await protectedScope.register(conversationRoutes);
    await protectedScope.register(groupRoutes);
    await protectedScope.register(moderationRoutes);
    await protectedScope.register(notificationRoutes);
    await protectedScope.register(searchRoutes, { timeoutMs: config.SEARCH_TIMEOUT_MS, rankWindow: config.SEARCH_RANK_WINDOW });
    await protectedScope.register(streamRoutes, { maxBufferedBytes: config.SSE_MAX_BUFFERED_BYTES });
  });

  return app;
}
