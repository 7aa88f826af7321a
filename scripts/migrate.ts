/**
 * `npm run migrate`: prepares the service's database (the roles that are
 * missing, docs/database.md "Roles"; the committed migrations; graphile-worker's
 * schema) and exits, without starting the server. Uses
 * MIGRATE_DATABASE_URL, else DATABASE_URL, else the embedded database.
 * Several at once wait for each other
 * (src/db/setup.ts), so a deployment may run it from every instance.
 */
import { loadConfig } from '../src/config';
import { setUpDatabase } from '../src/db/setup';
import { runMain, serviceDatabase } from './service-db';

runMain('migrate', async () => {
  const config = loadConfig();
  const db = await serviceDatabase(config, 'migrate', { direct: true });
  try {
    await setUpDatabase(db.url, config.DATABASE_VISITOR, { authenticator: { name: config.DATABASE_AUTHENTICATOR } });
    process.stdout.write('migrate: the database is up to date\n');
    return 0;
  } finally {
    await db.stop();
  }
});
