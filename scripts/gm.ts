/**
 * `npm run gm -- <graphile-migrate command>`: the schema workflow on a
 * development database, never on the service's own.
 *
 * - The URLs come from GM_DATABASE_URL (default
 *   postgres://postgres@127.0.0.1:5432/signalbox_dev), GM_SHADOW_DATABASE_URL
 *   (default: the same with `_shadow`) and GM_ROOT_DATABASE_URL (default: the
 *   same server's `postgres` database). An exported DATABASE_URL — the
 *   service's database — is never used: graphile-migrate gets these three
 *   and nothing inherited.
 * - The development database and its shadow are created when missing, and
 *   the request role exists, so `watch`, `status` and `commit` work on a
 *   fresh machine.
 * - `reset` refuses any database whose name does not end in `_dev`.
 * - After every migration run of the CLI, .gmrc's afterAllMigrations hook
 *   rewrites migrations/schema.sql (scripts/dump-schema.ts).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createDatabaseIfMissing, withDatabase } from '../src/db/admin';
import { ensureRoles } from '../src/db/setup';
import { projectRoot } from '../src/paths';

const databaseName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

export function gmUrls(env: NodeJS.ProcessEnv): { database: string; shadow: string; root: string } {
  const database = env.GM_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/signalbox_dev';
  return {
    database,
    shadow: env.GM_SHADOW_DATABASE_URL ?? withDatabase(database, `${databaseName(database)}_shadow`),
    root: env.GM_ROOT_DATABASE_URL ?? withDatabase(database, 'postgres'),
  };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const urls = gmUrls(process.env);
  const devName = databaseName(urls.database);
  if (args[0] === 'reset' && !/_dev$/.test(devName)) {
    process.stderr.write(
      `gm: refusing to reset "${devName}": reset erases its database, and only a development database (name ending in _dev) may be erased.\n`,
    );
    return 2;
  }
  for (const name of [devName, databaseName(urls.shadow)]) {
    if (await createDatabaseIfMissing(urls.root, name)) process.stderr.write(`gm: created database ${name}\n`);
  }
  await ensureRoles(urls.root, loadConfig({ ...process.env, DATABASE_URL: undefined }).DATABASE_VISITOR);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  const cli = path.join(projectRoot, 'node_modules', '.bin', 'graphile-migrate');
  const result = spawnSync(cli, args, {
    cwd: projectRoot,
    env: { ...env, DATABASE_URL: urls.database, SHADOW_DATABASE_URL: urls.shadow, ROOT_DATABASE_URL: urls.root },
    stdio: 'inherit',
  });
  return result.status ?? 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`gm: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
