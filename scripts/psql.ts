/**
 * `npm run psql [-- psql arguments]`: psql on the database the service uses.
 *
 * With DATABASE_URL, that database. Without it, the embedded server that
 * `npm start` runs (DATA_DIR, EMBEDDED_PG_PORT; user postgres, database
 * signalbox, password in DATA_DIR/postgres-password): when it is not
 * running, it is started for this session and stopped afterwards. The
 * password travels in PGPASSWORD, never on a command line.
 */
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../src/config';
import { serverAnswers } from '../src/db/admin';
import { embeddedUrl, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded';

async function main(): Promise<number> {
  const config = loadConfig();
  let url = config.DATABASE_URL ?? embeddedUrl(config.DATA_DIR, config.EMBEDDED_PG_PORT);
  let embedded: EmbeddedDatabase | undefined;
  if (!config.DATABASE_URL) {
    if (!url || !(await serverAnswers(url))) {
      process.stderr.write('psql: the embedded database is not running; starting it for this session\n');
      embedded = await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT, durable: true });
      url = embedded.url;
    }
    process.stderr.write(
      `psql: embedded database signalbox on 127.0.0.1:${config.EMBEDDED_PG_PORT}, user postgres (password in ${config.DATA_DIR}/postgres-password)\n`,
    );
  }
  // The password goes in the environment, not on psql's command line.
  const target = new URL(url!);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (target.password) {
    env.PGPASSWORD = decodeURIComponent(target.password);
    target.password = '';
  }
  try {
    const result = spawnSync('psql', ['-X', '--dbname', target.toString(), ...process.argv.slice(2)], { stdio: 'inherit', env });
    if (result.error) throw result.error;
    return result.status ?? 1;
  } finally {
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`psql: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
