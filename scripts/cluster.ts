/**
 * `npm run cluster -- up|down|status`: a local topology with real processes,
 * built from Debian's PostgreSQL binaries in a temporary directory without
 * touching the machine's own cluster:
 *
 *   primary ── streaming replication ──> replica (pg_basebackup -R)
 *      ^
 *   PgBouncer (transaction pooling, a pool smaller than the clients)
 *
 * `up [--delay MS] [--pool N]` prints the URLs (as environment lines the
 * service reads) and leaves the processes running; `down` stops them and
 * removes the directory; `status` prints the URLs again. --delay sets the
 * replica's recovery_min_apply_delay (simulated lag). The tests and the
 * benchmark use the same functions (startCluster).
 *
 * The roles are set up as in a deployment (docs/database.md, "Roles"): `urls` are
 * the owner's (postgres: migrations, a DBA), `runtime` the same servers
 * as the authenticator, which the service serves as.
 *
 * PostgreSQL and PgBouncer refuse to run as root: as root every command
 * runs as the `postgres` user (runuser), which owns the directory.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config';
import { asRole } from '../src/db/admin';
import { ensureRoles } from '../src/db/setup';

const run = promisify(execFile);

export type ClusterOptions = {
  /** The replica's recovery_min_apply_delay in ms (0: none). */
  applyDelayMs?: number;
  /** PgBouncer's server connections per database/user pair. */
  poolSize?: number;
  /** Where to build it; default: a new directory under the system's temp dir. */
  dir?: string;
  /** The database created on the primary for the service. */
  database?: string;
};

export type ClusterState = {
  dir: string;
  database: string;
  ports: { primary: number; replica: number; bouncer: number };
  urls: { primary: string; replica: string; bouncer: string };
  /** The same, as the runtime role (the authenticator). */
  runtime: { primary: string; replica: string; bouncer: string };
};

const STATE_FILE = 'cluster.json';
const DEFAULT_DIR = path.join(os.tmpdir(), 'signalbox-cluster');

/** The directory holding PostgreSQL's server binaries (initdb, pg_ctl), newest version first. */
export function postgresBinDir(): string | null {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv) return fs.existsSync(path.join(fromEnv, 'initdb')) ? fromEnv : null;
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_basebackup'))) return dir;
  }
  return null;
}

export function pgbouncerBinary(): string | null {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** What is missing to build the topology here (empty: nothing). */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (!postgresBinDir()) missing.push('PostgreSQL server binaries (postgresql-15)');
  if (!pgbouncerBinary()) missing.push('pgbouncer');
  return missing;
}

const asRoot = process.getuid?.() === 0;

/** Runs a server binary, as `postgres` when we are root. */
async function exec(file: string, args: string[], options: { allowFailure?: boolean } = {}): Promise<string> {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  try {
    const { stdout } = await run(cmd, argv, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    if (options.allowFailure) return '';
    const e = error as { stderr?: string; message: string };
    throw new Error(`${path.basename(file)} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const url = (port: number, database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;

function serverConfig(dir: string, port: number): string {
  return [
    '',
    '# signalbox cluster (scripts/cluster.ts)',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'wal_level = replica',
    'max_wal_senders = 5',
    'hot_standby = on',
    // A long read on the replica is not cancelled by the primary's vacuum.
    'hot_standby_feedback = on',
    'max_connections = 200',
    'shared_buffers = 64MB',
    // A throwaway test cluster: durability is not what it is for.
    'fsync = off',
    "log_min_messages = 'warning'",
    '',
  ].join('\n');
}

export class Cluster {
  constructor(readonly state: ClusterState, private readonly bin: string) {}

  get urls(): ClusterState['urls'] {
    return this.state.urls;
  }

  get runtime(): ClusterState['runtime'] {
    return this.state.runtime;
  }

  private data(which: 'primary' | 'replica'): string {
    return path.join(this.state.dir, which);
  }

  /** `crash`: an immediate stop, as a power cut (connections drop without a word). */
  async pgCtl(which: 'primary' | 'replica', action: 'start' | 'stop' | 'crash'): Promise<void> {
    const args = ['-D', this.data(which), '-w', '-t', '60'];
    if (action === 'start') await exec(path.join(this.bin, 'pg_ctl'), [...args, '-l', path.join(this.state.dir, `${which}.log`), 'start']);
    else await exec(path.join(this.bin, 'pg_ctl'), [...args, '-m', action === 'crash' ? 'immediate' : 'fast', 'stop'], { allowFailure: true });
  }

  stopReplica(): Promise<void> {
    return this.pgCtl('replica', 'stop');
  }

  crashReplica(): Promise<void> {
    return this.pgCtl('replica', 'crash');
  }

  startReplica(): Promise<void> {
    return this.pgCtl('replica', 'start');
  }

  /** Changes the replica's recovery_min_apply_delay without a restart. */
  async setApplyDelay(ms: number): Promise<void> {
    const psql = path.join(this.bin, 'psql');
    await exec(psql, ['-X', '-q', '-d', this.urls.replica, '-c', `alter system set recovery_min_apply_delay = '${Math.round(ms)}ms'`]);
    await exec(psql, ['-X', '-q', '-d', this.urls.replica, '-c', 'select pg_reload_conf()']);
  }

  /** Whether the primary, the replica and PgBouncer all answer. */
  async alive(): Promise<boolean> {
    const psql = path.join(this.bin, 'psql');
    const answers = await Promise.all(
      Object.values(this.urls).map((u) => exec(psql, ['-X', '-At', '-d', u, '-c', 'select 1'], { allowFailure: true })),
    );
    return answers.every((a) => a.trim() === '1');
  }

  async down(): Promise<void> {
    const pidFile = path.join(this.state.dir, 'pgbouncer.pid');
    if (fs.existsSync(pidFile)) {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
    await this.pgCtl('replica', 'stop');
    await this.pgCtl('primary', 'stop');
    fs.rmSync(this.state.dir, { recursive: true, force: true });
  }
}

/** Builds and starts primary, replica and PgBouncer; resolves when all three answer. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const bin = postgresBinDir();
  const bouncer = pgbouncerBinary();
  if (!bin || !bouncer) throw new Error(`cannot build the cluster: missing ${missingTools().join(', ')}`);
  const database = options.database ?? 'signalbox';
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-cluster-'));
  fs.mkdirSync(dir, { recursive: true });
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const ports = { primary: await freePort(), replica: await freePort(), bouncer: await freePort() };
  const urls = { primary: url(ports.primary, database), replica: url(ports.replica, database), bouncer: url(ports.bouncer, database) };
  const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
  const as = (u: string) => asRole(u, config.DATABASE_AUTHENTICATOR);
  const runtime = { primary: as(urls.primary), replica: as(urls.replica), bouncer: as(urls.bouncer) };
  const cluster = new Cluster({ dir, database, ports, urls, runtime }, bin);
  try {
    const primary = path.join(dir, 'primary');
    await exec(path.join(bin, 'initdb'), ['-D', primary, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    fs.appendFileSync(path.join(primary, 'postgresql.conf'), serverConfig(dir, ports.primary));
    await cluster.pgCtl('primary', 'start');
    await exec(path.join(bin, 'psql'), ['-X', '-q', '-d', url(ports.primary, 'postgres'), '-c', `create database ${database}`]);
    // The visitor and the authenticator, before the replica copies the cluster.
    await ensureRoles(urls.primary, config.DATABASE_VISITOR, { name: config.DATABASE_AUTHENTICATOR });

    const replica = path.join(dir, 'replica');
    await exec(path.join(bin, 'pg_basebackup'), ['-d', url(ports.primary, 'postgres'), '-D', replica, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    fs.appendFileSync(
      path.join(replica, 'postgresql.conf'),
      `${serverConfig(dir, ports.replica)}recovery_min_apply_delay = '${options.applyDelayMs ?? 0}ms'\n`,
    );
    await cluster.pgCtl('replica', 'start');

    fs.writeFileSync(path.join(dir, 'userlist.txt'), `"postgres" ""\n"${config.DATABASE_AUTHENTICATOR}" ""\n`);
    fs.writeFileSync(
      path.join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=127.0.0.1 port=${ports.primary}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${ports.bouncer}`,
        `unix_socket_dir = ${dir}`,
        'auth_type = trust',
        `auth_file = ${path.join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        `default_pool_size = ${options.poolSize ?? 4}`,
        'max_client_conn = 1000',
        // Slonik sends these timeouts at connect; PgBouncer cannot pass
        // startup parameters on in transaction mode, so it enforces its own.
        'ignore_startup_parameters = statement_timeout,idle_in_transaction_session_timeout,extra_float_digits',
        'query_timeout = 60',
        'idle_transaction_timeout = 60',
        `logfile = ${path.join(dir, 'pgbouncer.log')}`,
        `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
        '',
      ].join('\n'),
    );
    if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
    await exec(bouncer, ['-d', path.join(dir, 'pgbouncer.ini')]);
    await waitFor(async () => (await exec(path.join(bin, 'psql'), ['-X', '-At', '-d', urls.bouncer, '-c', 'select 1'], { allowFailure: true })).trim() === '1', 'PgBouncer');
    await waitFor(async () => (await exec(path.join(bin, 'psql'), ['-X', '-At', '-d', urls.replica, '-c', 'select pg_is_in_recovery()'], { allowFailure: true })).trim() === 't', 'the replica');
    fs.writeFileSync(path.join(dir, STATE_FILE), JSON.stringify(cluster.state, null, 2));
    return cluster;
  } catch (error) {
    await cluster.down().catch(() => {});
    throw error;
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function savedCluster(dir: string): Cluster | null {
  const file = path.join(dir, STATE_FILE);
  const bin = postgresBinDir();
  if (!fs.existsSync(file) || !bin) return null;
  return new Cluster(JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterState, bin);
}

function printUrls(cluster: Cluster): void {
  const { urls, dir } = cluster.state;
  process.stdout.write(
    [
      `# signalbox cluster in ${dir} (npm run cluster -- down)`,
      `DATABASE_URL=${cluster.state.runtime.bouncer}`,
      `LISTEN_DATABASE_URL=${cluster.state.runtime.primary}`,
      `MIGRATE_DATABASE_URL=${urls.primary}`,
      `DATABASE_READ_URL=${cluster.state.runtime.replica}`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const flag = (name: string) => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const dir = process.env.SIGNALBOX_CLUSTER_DIR ?? DEFAULT_DIR;
  const existing = savedCluster(dir);
  if (command === 'up') {
    if (existing && (await existing.alive())) {
      process.stderr.write(`a cluster is already up in ${dir}:\n`);
      printUrls(existing);
      return 0;
    }
    // What a crash or a reboot left behind: stopped, removed, built anew.
    if (existing) await existing.down();
    const delay = flag('--delay');
    const pool = flag('--pool');
    printUrls(
      await startCluster({
        dir,
        ...(delay ? { applyDelayMs: Number(delay) } : {}),
        ...(pool ? { poolSize: Number(pool) } : {}),
      }),
    );
    return 0;
  }
  if (command === 'down') {
    if (!existing) {
      process.stderr.write(`no cluster in ${dir}\n`);
      return 0;
    }
    await existing.down();
    process.stdout.write(`# stopped and removed ${dir}\n`);
    return 0;
  }
  if (command === 'status') {
    if (!existing) {
      process.stderr.write(`no cluster in ${dir}\n`);
      return 1;
    }
    printUrls(existing);
    if (await existing.alive()) return 0;
    process.stderr.write('not all of it answers: npm run cluster -- up rebuilds it\n');
    return 1;
  }
  process.stderr.write('usage: npm run cluster -- up [--delay MS] [--pool N] | down | status\n');
  return 2;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
