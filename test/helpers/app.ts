import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { DatabasePool, Interceptor } from 'slonik';
import type { Test } from 'tap';
import { buildApp } from '../../src/app';
import type { RedisCacheClient } from '../../src/cache/redis-store';
import { loadConfig, type Config } from '../../src/config';
import { createDatabasePool } from '../../src/db/pool';
import { createTestPool, type TestDatabase } from './db';

async function sharedPool(t: Test, url: string, interceptors: readonly Interceptor[] = []): Promise<DatabasePool> {
  const pool = await createDatabasePool(url, { interceptors, maximumPoolSize: 5, checkShapes: true });
  t.teardown(() => pool.end());
  return pool;
}

/** Listens on an ephemeral loopback port and returns its base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

export type TestApp = { app: FastifyInstance; pool: DatabasePool; db: TestDatabase; config: Config };

/** The whole application on a fresh database, driven with app.inject(). */
export async function buildTestApp(
  t: Test,
  options: {
    env?: Record<string, string>;
    interceptors?: readonly Interceptor[];
    cacheClient?: RedisCacheClient | undefined;
    /** Start the LISTEN connection (live streams, cross-instance eviction). Default true. */
    live?: boolean;
    /** Where the LISTEN connection goes (default: the test database; e.g. through a tcpProxy). */
    listenerUrl?: string;
    /** Share another app's database instead of creating one (a second instance). */
    shareWith?: TestApp;
  } = {},
): Promise<TestApp> {
  const { db, pool } = options.shareWith
    ? { db: options.shareWith.db, pool: await sharedPool(t, options.shareWith.db.runtimeUrl, options.interceptors) }
    : await createTestPool(t, options.interceptors);
  // CHECK_SHAPES: every row and every response of every test is validated against its schema.
  // The send budget would refuse the bulk tests' sends: off unless a test sets it.
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: db.url, CHECK_SHAPES: '1', SEND_RATE_LIMIT: '1000000', ...options.env });
  const app = await buildApp({
    config,
    pool,
    logger: process.env.SIGNALBOX_TEST_LOG ? { level: process.env.SIGNALBOX_TEST_LOG } : false,
    cacheClient: options.cacheClient,
    ...(options.live === false ? {} : { listenerUrl: options.listenerUrl ?? db.runtimeUrl }),
  });
  t.teardown(() => app.close());
  return { app, pool, db, config };
}

export type Session = { token: string; id: number; username: string };

let counter = 0;
/** Registers a fresh user; the username is unique within the test database. */
export async function signUp(app: FastifyInstance, prefix = 'user'): Promise<Session> {
  const username = `${prefix}_${process.pid % 1000}_${++counter}`;
  const res = await app.inject({ method: 'POST', url: '/auth/register', payload: { username, password: 'correct horse battery' } });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { token: string; user: { id: number } };
  return { token: body.token, id: body.user.id, username };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** An authenticated request (no token when `as` is null). */
export function call(
  app: FastifyInstance,
  as: Session | null,
  method: Method,
  url: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    headers: { ...(as ? { authorization: `Bearer ${as.token}` } : {}), ...headers },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

/** Sends a message through the API and returns its JSON. */
export async function send(
  app: FastifyInstance,
  from: Session,
  body: { receiverId?: number; groupId?: number; parentMessageId?: number; content: string },
): Promise<{ id: number; senderId: number; receiverId: number; groupId: number | null; [k: string]: unknown }> {
  const res = await call(app, from, 'POST', '/messages', body);
  if (res.statusCode !== 201) throw new Error(`send failed: ${res.statusCode} ${res.body}`);
  return res.json();
}
