/**
 * `npm test`: finds a PostgreSQL server (DATABASE_URL, else 127.0.0.1:5432,
 * else an embedded one; SIGNALBOX_TEST_EMBEDDED=1 forces it), builds a migrated template database, and runs tap.
 * Every test file clones its own database from that template
 * (test/helpers/db.ts), so files run in parallel without shared state.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../src/config';
import { adminQuery, resolveServer, withDatabase } from '../src/db/admin';
import { setUpDatabase } from '../src/db/setup';
import { projectRoot } from '../src/paths';

/**
 * Test databases carry the pid of the run that made them; a run that was
 * killed leaves them behind. Drop those whose process is gone (a parallel
 * run's are left alone).
 */
async function dropOrphanedTestDatabases(serverUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname ~ '^signalbox_test_(tpl_)?[0-9]+'`,
    );
    for (const { datname } of rows) {
      const pid = Number(/^signalbox_test_(?:tpl_)?(\d+)/.exec(datname)?.[1]);
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (!alive) await client.query(`drop database if exists "${datname}" with (force)`);
    }
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
  const { serverUrl, stop } = await resolveServer({
    embeddedDataDir: path.join(projectRoot, '.data', 'test'),
    embeddedPort: config.EMBEDDED_PG_PORT + 1,
    forceEmbedded: process.env.SIGNALBOX_TEST_EMBEDDED === '1',
    log: (line) => console.log(`# tests: ${line}`),
  });

  await dropOrphanedTestDatabases(serverUrl);
  const template = `signalbox_test_tpl_${process.pid}`;
  const templateUrl = withDatabase(serverUrl, template);
  await adminQuery(serverUrl, `drop database if exists ${template}`, `create database ${template}`);
  try {
    // The tests serve as the runtime role, as a deployment does (docs/database.md,
    // "Roles"); a password, for servers that ask for one.
    const authenticator = { name: config.DATABASE_AUTHENTICATOR, password: 'signalbox-test-authenticator' };
    await setUpDatabase(templateUrl, config.DATABASE_VISITOR, { quiet: true, authenticator });
    const tap = path.join(projectRoot, 'node_modules', '.bin', 'tap');
    const child = spawn(tap, process.argv.slice(2), {
      cwd: projectRoot,
      stdio: 'inherit',
      env: {
        ...process.env,
        SIGNALBOX_TEST_SERVER_URL: serverUrl,
        SIGNALBOX_TEST_TEMPLATE: template,
        DATABASE_VISITOR: config.DATABASE_VISITOR,
        SIGNALBOX_TEST_AUTHENTICATOR: authenticator.name,
        SIGNALBOX_TEST_AUTHENTICATOR_PASSWORD: authenticator.password,
      },
    });
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await adminQuery(serverUrl, `drop database if exists ${template} with (force)`).catch(() => {});
    await stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
