/**
 * The process entry, as `npm start` runs it: configuration, the embedded
 * PostgreSQL when there is no DATABASE_URL (reusing its data, recovering from
 * a killed run), migrations, listening, and a graceful SIGTERM.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { createTestDatabase } from './helpers/db';
import { request, start } from './helpers/process';
import { openStream } from './helpers/sse';
import { within } from './helpers/time';

t.test('with DATABASE_URL: serves, and SIGTERM closes open streams and exits 0', async (t) => {
  const db = await createTestDatabase(t);
  const server = await start({ DATABASE_URL: db.url });
  t.teardown(() => server.child.kill('SIGKILL'));
  t.equal((await request(server.base, 'GET', '/healthz')).status, 200);
  const reg = await request(server.base, 'POST', '/auth/register', { username: 'proc_user', password: 'long enough pw' });
  t.equal(reg.status, 201);
  // The retention job runs in this process: a run shows in /metrics.
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());
  const metrics = async () => (await fetch(`${server.base}/metrics`)).text();
  t.notMatch(await metrics(), /signalbox_prune_runs_total\{/, 'no prune run yet');
  await within((async () => {
    // The worker installs its schema as it starts; queue the job once it is there.
    for (;;) {
      const ok = await admin.query(`select graphile_worker.add_job('signalbox_prune')`).then(() => true, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    while (!/signalbox_prune_runs_total\{result="ok"\} 1/.test(await metrics())) await new Promise((r) => setTimeout(r, 100));
  })(), 15_000, 'the queued prune ran');
  const text = await metrics();
  t.match(text, /signalbox_prune_deleted_rows_total\{table="live_events"\} \d+/, 'with its rows by table');
  t.match(text, /signalbox_prune_last_success_timestamp_seconds \d+/, 'and when it finished');
  const stream = await openStream(`${server.base}/notifications/stream`, { authorization: `Bearer ${reg.json.token}` });
  t.equal(stream.status, 200, 'a live stream is open');
  server.child.kill('SIGTERM');
  // SHUTDOWN_DELAY_MS (2 s): still accepting, but no longer ready (once
  // the signal is handled: asked again until then, within a second).
  let readiness = 0;
  for (let i = 0; i < 20 && readiness !== 503; i++) {
    readiness = (await request(server.base, 'GET', '/readyz')).status;
    if (readiness !== 503) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(readiness, 503, 'readiness flips on SIGTERM, before the drain');
  t.equal((await request(server.base, 'GET', '/livez')).status, 200, 'liveness does not');
  t.equal(await within(server.exited, 15_000, 'exit after SIGTERM'), 0, 'exits 0 despite the open stream');
  await within(stream.closed, 1000, 'stream closed');
  t.match(server.output(), /"signal":"SIGTERM".*"msg":"closing"/, 'logs the graceful close');
});

t.test('as the authenticator, with MIGRATE_ON_START=false: serves with no owner\'s credential; as the owner: a warning', async (t) => {
  const db = await createTestDatabase(t);
  const runtime = await start({ DATABASE_URL: db.runtimeUrl, MIGRATE_ON_START: 'false' });
  t.teardown(() => runtime.child.kill('SIGKILL'));
  t.equal((await request(runtime.base, 'GET', '/healthz')).status, 200, 'serves');
  const reg = await request(runtime.base, 'POST', '/auth/register', { username: 'lp_user', password: 'long enough pw' });
  t.equal(reg.status, 201, 'sign-up through the functions');
  const login = await request(runtime.base, 'POST', '/auth/login', { username: 'lp_user', password: 'long enough pw' });
  t.equal(login.status, 200, 'login');
  t.equal((await request(runtime.base, 'GET', '/me', undefined, { authorization: `Bearer ${login.json.token}` })).status, 200, 'the session is looked up');
  t.match(runtime.output(), /runs no retention job/, 'says it runs no retention job');
  t.notMatch(runtime.output(), /which can bypass row-level security/, 'no warning about its role');
  runtime.child.kill('SIGTERM');
  await within(runtime.exited, 15_000, 'exit after SIGTERM');

  const owner = await start({ DATABASE_URL: db.url });
  t.teardown(() => owner.child.kill('SIGKILL'));
  t.match(owner.output(), /which can bypass row-level security and change the schema/, 'serving as the owner logs a warning');
  owner.child.kill('SIGTERM');
  await within(owner.exited, 15_000, 'exit after SIGTERM');
});

t.test('without DATABASE_URL: embedded PostgreSQL under DATA_DIR, reused, recovered after SIGKILL', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-embedded-'));
  const port = String(20_000 + Math.floor(Math.random() * 20_000));
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  const postmaster = () => Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  t.teardown(() => {
    // Never leave a postgres behind, whatever happened above.
    if (fs.existsSync(pidFile) && alive(postmaster())) process.kill(postmaster(), 'SIGINT');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: port };

  const first = await start(env);
  t.match(first.output(), /initialising a new cluster/, 'first start initialises a cluster');
  t.equal((await request(first.base, 'GET', '/healthz')).status, 200, 'serves from the embedded database');
  t.equal((await request(first.base, 'POST', '/auth/register', { username: 'kept_user', password: 'long enough pw' })).status, 201);
  const orphan = postmaster();
  first.child.kill('SIGKILL');
  await first.exited;
  t.ok(alive(orphan), 'SIGKILL leaves the postmaster running');

  const second = await start(env);
  t.teardown(() => second.child.kill('SIGKILL'));
  t.match(second.output(), /stopping leftover postmaster/, 'the next start recovers it');
  t.notMatch(second.output(), /initialising a new cluster/, 'and reuses the data directory');
  const login = await request(second.base, 'POST', '/auth/login', { username: 'kept_user', password: 'long enough pw' });
  t.equal(login.status, 200, 'the data survived');
  // Least privilege (docs/database.md, "Roles"): the service serves as the
  // authenticator, not as the cluster's superuser.
  const owner = new pg.Client({
    connectionString: `postgres://postgres:${encodeURIComponent(fs.readFileSync(path.join(dataDir, 'postgres-password'), 'utf8').trim())}@127.0.0.1:${port}/signalbox`,
  });
  await owner.connect();
  const { rows } = await owner.query<{ usename: string }>(
    `select distinct usename from pg_stat_activity where datname = 'signalbox' and pid <> pg_backend_pid() and backend_type = 'client backend'`,
  );
  await owner.end();
  t.ok(rows.some((r) => r.usename === 'signalbox_authenticator'), `its request connections log in as the authenticator (${rows.map((r) => r.usename).join(', ')}; the owner's: the retention job)`);
  t.notMatch(second.output(), /which can bypass row-level security/, 'and it does not warn about its role');
  const running = postmaster();
  second.child.kill('SIGTERM');
  t.equal(await within(second.exited, 30_000, 'exit after SIGTERM'), 0, 'SIGTERM exits 0');
  t.notOk(alive(running), 'and stops the embedded PostgreSQL');
});

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

t.test('SIGTERM to the process `npm start` started stops everything: no process, no open port', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signalbox-npm-start-'));
  const pgPort = 20_000 + Math.floor(Math.random() * 20_000);
  const httpPort = pgPort + 1;
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const server = await start({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(httpPort), HOST: '127.0.0.1' }, 'npm start');
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  const postmaster = Number.parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  t.teardown(() => {
    try {
      process.kill(postmaster, 'SIGINT');
    } catch {
      // already gone, as it should be
    }
  });
  t.equal((await request(server.base, 'GET', '/healthz')).status, 200, 'npm start serves');
  t.ok(await listening(pgPort), 'the embedded PostgreSQL listens');
  server.child.kill('SIGTERM'); // the npm process itself
  t.equal(await within(server.exited, 30_000, 'npm exits after SIGTERM'), 0, 'npm exits 0');
  let httpOpen = true;
  let pgOpen = true;
  for (let i = 0; i < 50 && (httpOpen || pgOpen); i++) {
    [httpOpen, pgOpen] = [await listening(httpPort), await listening(pgPort)];
    if (httpOpen || pgOpen) await new Promise((r) => setTimeout(r, 200));
  }
  t.notOk(httpOpen, `nothing listens on the API port ${httpPort} any more`);
  t.notOk(pgOpen, `nothing listens on the database port ${pgPort} any more`);
  let postmasterAlive = true;
  try {
    process.kill(postmaster, 0);
  } catch {
    postmasterAlive = false;
  }
  t.notOk(postmasterAlive, 'the embedded PostgreSQL stopped');
});
