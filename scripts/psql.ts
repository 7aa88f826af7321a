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
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { serverAnswers } from '../src/db/admin';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded';

async function main(): Promise<number> {
  const config = loadConfig();
  const extra = process.argv.slice(2);
  const env: NodeJS.ProcessEnv = { ...process.env };
  let url = config.DATABASE_URL;
  let embedded: EmbeddedDatabase | undefined;
  if (!url) {
    const passwordFile = path.join(path.resolve(config.DATA_DIR), 'postgres-password');
    const local = `postgres://postgres@127.0.0.1:${config.EMBEDDED_PG_PORT}/signalbox`;
    if (fs.existsSync(passwordFile)) env.PGPASSWORD = fs.readFileSync(passwordFile, 'utf8').trim();
    const running = fs.existsSync(passwordFile) && (await serverAnswers(local.replace('postgres@', `postgres:${encodeURIComponent(env.PGPASSWORD ?? '')}@`)));
    if (!running) {
      process.stderr.write('psql: the embedded database is not running; starting it for this session\n');
      embedded = await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT, durable: true });
      env.PGPASSWORD = fs.readFileSync(passwordFile, 'utf8').trim();
    }
    process.stderr.write(`psql: embedded database signalbox on 127.0.0.1:${config.EMBEDDED_PG_PORT}, user postgres (password in ${passwordFile})\n`);
    url = local;
  }
  try {
    const result = spawnSync('psql', ['-X', '--dbname', url, ...extra], { stdio: 'inherit', env });
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
