/**
 * `npm test`: finds a PostgreSQL server (DATABASE_URL, else 127.0.0.1:5432,
 * else an embedded one; SIGNALBOX_TEST_EMBEDDED=1 forces it), builds a migrated template database, and runs tap.
 * Every test file clones its own database from that template
 * (test/helpers/db.ts), so files run in parallel without shared state.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { adminQuery, serverAnswers, withDatabase } from '../src/db/admin';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded';
import { ensureRoles, migrateDatabase } from '../src/db/setup';
import { projectRoot } from '../src/paths';

const LOCAL_SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';

async function main(): Promise<number> {
  const config = loadConfig({ ...process.env, DATABASE_URL: undefined });
  let embedded: EmbeddedDatabase | undefined;
  let serverUrl: string;
  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL;
    console.log('# tests: using DATABASE_URL');
  } else if (process.env.SIGNALBOX_TEST_EMBEDDED !== '1' && (await serverAnswers(LOCAL_SERVER))) {
    serverUrl = LOCAL_SERVER;
    console.log('# tests: using PostgreSQL on 127.0.0.1:5432');
  } else {
    console.log('# tests: no server on 127.0.0.1:5432, starting the embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({
      dataDir: path.join(projectRoot, '.data', 'test'),
      port: config.EMBEDDED_PG_PORT + 1,
      durable: false,
    });
    serverUrl = embedded.adminUrl;
  }

  const template = `signalbox_test_tpl_${process.pid}`;
  const templateUrl = withDatabase(serverUrl, template);
  await ensureRoles(serverUrl, config.DATABASE_VISITOR);
  await adminQuery(serverUrl, `drop database if exists ${template}`, `create database ${template}`);
  try {
    await migrateDatabase(templateUrl, config.DATABASE_VISITOR, { quiet: true });
    const tap = path.join(projectRoot, 'node_modules', '.bin', 'tap');
    const child = spawn(tap, process.argv.slice(2), {
      cwd: projectRoot,
      stdio: 'inherit',
      env: {
        ...process.env,
        SIGNALBOX_TEST_SERVER_URL: serverUrl,
        SIGNALBOX_TEST_TEMPLATE: template,
        DATABASE_VISITOR: config.DATABASE_VISITOR,
      },
    });
    return await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  } finally {
    await adminQuery(serverUrl, `drop database if exists ${template} with (force)`).catch(() => {});
    if (embedded) await embedded.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
