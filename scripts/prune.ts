/**
 * `npm run prune`: one run of the retention job the service schedules
 * (PRUNE_SCHEDULE), now, with the same settings (LIVE_EVENTS_RETENTION,
 * NOTIFICATIONS_RETENTION, AUDIT_RETENTION, PRUNE_BATCH_SIZE); prints what
 * it deleted. A DBA may run the same in psql: `call app_private.prune();`.
 */
import { loadConfig } from '../src/config';
import { createDatabasePool } from '../src/db/pool';
import { prune } from '../src/jobs/prune';
import { runMain, serviceDatabase } from './service-db';

runMain('prune', async () => {
  const config = loadConfig();
  const db = await serviceDatabase(config, 'prune', { direct: true });
  try {
    const pool = await createDatabasePool(db.url, { maximumPoolSize: 1 });
    try {
      const run = await prune(pool, config);
      process.stdout.write(`${JSON.stringify(run)}\n`);
      return 0;
    } finally {
      await pool.end();
    }
  } finally {
    await db.stop();
  }
});
