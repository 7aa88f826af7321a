import pg from 'pg';
import { startEmbeddedPostgres } from './embedded';

/**
 * Small helpers for the scripts that manage whole databases (tests,
 * benchmark): they use plain pg clients on the server's maintenance
 * database, outside any pool.
 */

/** The same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The same server and database as another role (its password, or none: trust or peer authentication). */
export function asRole(url: string, role: string, password?: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password ? encodeURIComponent(password) : '';
  return u.toString();
}

/** Whether a PostgreSQL server answers at `url` within two seconds. */
export async function serverAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs statements (CREATE/DROP DATABASE cannot run in a transaction) on one connection. */
export async function adminQuery(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Creates database `name` on the server of `serverUrl` unless it exists; true when it created it. */
export async function createDatabaseIfMissing(serverUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount) return false;
    await client.query(`create database "${name.replace(/"/g, '""')}"`);
    return true;
  } finally {
    await client.end();
  }
}

export const LOCAL_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The server the scripts (tests, benchmark) work on: DATABASE_URL when set,
 * else the machine's PostgreSQL on 127.0.0.1:5432 when it answers (unless
 * `embedded` forces otherwise), else an embedded, non-durable one.
 */
export async function resolveServer(options: {
  embeddedDataDir: string;
  embeddedPort: number;
  forceEmbedded?: boolean;
  log?: (line: string) => void;
}): Promise<{ serverUrl: string; kind: 'DATABASE_URL' | 'local' | 'embedded'; stop: () => Promise<void> }> {
  const log = options.log ?? (() => {});
  if (process.env.DATABASE_URL) {
    log('using DATABASE_URL');
    return { serverUrl: process.env.DATABASE_URL, kind: 'DATABASE_URL', stop: async () => {} };
  }
  if (!options.forceEmbedded && (await serverAnswers(LOCAL_SERVER))) {
    log('using PostgreSQL on 127.0.0.1:5432');
    return { serverUrl: LOCAL_SERVER, kind: 'local', stop: async () => {} };
  }
  log('starting the embedded PostgreSQL');
  const embedded = await startEmbeddedPostgres({ dataDir: options.embeddedDataDir, port: options.embeddedPort, durable: false });
  return { serverUrl: embedded.adminUrl, kind: 'embedded', stop: embedded.stop };
}
