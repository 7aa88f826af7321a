import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { DatabasePool, Interceptor } from 'slonik';
import type { Test } from 'tap';
import { buildApp } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { createTestPool, type TestDatabase } from './db';

export type TestApp = { app: FastifyInstance; pool: DatabasePool; db: TestDatabase; config: Config };

/** The whole application on a fresh database, driven with app.inject(). */
export async function buildTestApp(
  t: Test,
  options: { env?: Record<string, string>; interceptors?: readonly Interceptor[]; cacheClient?: unknown } = {},
): Promise<TestApp> {
  const { db, pool } = await createTestPool(t, options.interceptors);
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: db.url, ...options.env });
  const app = await buildApp({
    config,
    pool,
    logger: process.env.SIGNALBOX_TEST_LOG ? { level: process.env.SIGNALBOX_TEST_LOG } : false,
    cacheClient: options.cacheClient,
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
  body: { receiverId?: number; parentMessageId?: number; content: string },
): Promise<{ id: number; senderId: number; receiverId: number; [k: string]: unknown }> {
  const res = await call(app, from, 'POST', '/messages', body);
  if (res.statusCode !== 201) throw new Error(`send failed: ${res.statusCode} ${res.body}`);
  return res.json();
}
