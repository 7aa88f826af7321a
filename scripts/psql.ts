/**
 * `npm run psql [-- psql arguments]`: psql on the database the service uses
 * (DATABASE_URL, or the embedded one: scripts/service-db.ts). The password
 * travels in PGPASSWORD, never on a command line.
 */
import { spawnSync } from 'node:child_process';
import { loadConfig } from '../src/config';
import { runMain, serviceDatabase } from './service-db';

runMain('psql', async () => {
  const db = await serviceDatabase(loadConfig(), 'psql');
  // The password goes in the environment, not on psql's command line.
  const target = new URL(db.url);
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
    await db.stop();
  }
});
