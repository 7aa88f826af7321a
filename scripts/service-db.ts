/**
 * The database a helper command works on: the one the service uses.
 *
 * With a URL (DATABASE_URL, or MIGRATE_DATABASE_URL for what needs the
 * owner's direct session), that database. Without one, the embedded
 * server that `npm start` runs (DATA_DIR, EMBEDDED_PG_PORT; user postgres,
 * database signalbox, password in DATA_DIR/postgres-password): when it is
 * not running, it is started for this command and stopped afterwards.
 */
import type { Config } from '../src/config';
import { serverAnswers } from '../src/db/admin';
import { embeddedUrl, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded';

export async function serviceDatabase(
  config: Config,
  command: string,
  options: { direct?: boolean } = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const given = options.direct ? (config.MIGRATE_DATABASE_URL ?? config.DATABASE_URL) : config.DATABASE_URL;
  if (given) return { url: given, stop: async () => {} };
  let url = embeddedUrl(config.DATA_DIR, config.EMBEDDED_PG_PORT);
  let embedded: EmbeddedDatabase | undefined;
  if (!url || !(await serverAnswers(url))) {
    process.stderr.write(`${command}: the embedded database is not running; starting it for this command\n`);
    embedded = await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT, durable: true });
    url = embedded.url;
  }
  process.stderr.write(
    `${command}: embedded database signalbox on 127.0.0.1:${config.EMBEDDED_PG_PORT}, user postgres (password in ${config.DATA_DIR}/postgres-password)\n`,
  );
  return { url, stop: async () => embedded?.stop() };
}

/** Runs a command's main and exits with its code; errors print as `command: message`. */
export function runMain(command: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${command}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
