/**
 * `npm run gm -- <graphile-migrate command>` for development: points
 * graphile-migrate at the local server with all three URLs it reads
 * (DATABASE_URL, SHADOW_DATABASE_URL, ROOT_DATABASE_URL), after making sure
 * the request role exists. Example: `npm run gm -- commit --message "…"`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { ensureRoles } from '../src/db/setup';
import { projectRoot } from '../src/paths';

async function main(): Promise<void> {
  const server = process.env.GM_SERVER_URL ?? 'postgres://postgres@127.0.0.1:5432';
  const env = {
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? `${server}/signalbox_dev`,
    SHADOW_DATABASE_URL: process.env.SHADOW_DATABASE_URL ?? `${server}/signalbox_dev_shadow`,
    ROOT_DATABASE_URL: process.env.ROOT_DATABASE_URL ?? `${server}/postgres`,
  };
  await ensureRoles(env.ROOT_DATABASE_URL, loadConfig().DATABASE_VISITOR);
  const cli = path.join(projectRoot, 'node_modules', '.bin', 'graphile-migrate');
  const result = spawnSync(cli, process.argv.slice(2), { cwd: projectRoot, env, stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
