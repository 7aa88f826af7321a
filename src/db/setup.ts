import { Logger, migrate as graphileMigrate } from 'graphile-migrate';
// Not re-exported by the package's index; pinned version (package.json).
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import pg from 'pg';
import { createPool, sql } from 'slonik';
import { z } from 'zod';
import { migrateWorkerSchema } from '../jobs/worker';
import { migrationsFolder } from '../paths';


/**
 * Creates the request role once per cluster and lets the connecting role
 * switch to it. Roles are cluster-wide, so this is a setup step, not a
 * migration: a migration would fail on the second database of a cluster.
 */
export async function ensureRoles(databaseUrl: string, visitorRole: string): Promise<void> {
  const pool = await createPool(databaseUrl, { maximumPoolSize: 1 });
  try {
    const exists = await pool.exists(
      sql.type(z.object({ exists: z.boolean() }))`select 1 from pg_roles where rolname = ${visitorRole}`,
    );
    if (!exists) {
      try {
        await pool.query(sql.unsafe`create role ${sql.identifier([visitorRole])} nologin`);
      } catch (error) {
        // Another process created it between our check and our create.
        if ((error as { cause?: { code?: string } }).cause?.code !== '42710') throw error;
      }
    }
    // SET ROLE needs membership; a superuser has it implicitly.
    await pool.query(sql.unsafe`grant ${sql.identifier([visitorRole])} to current_user`);
  } finally {
    await pool.end();
  }
}

const quietLogger = new Logger(() => () => {});

/** Applies the committed migrations (idempotent: applied ones are skipped). */
export async function migrateDatabase(
  databaseUrl: string,
  visitorRole: string,
  options: { quiet?: boolean; migrationsFolder?: string } = {},
): Promise<void> {
  await graphileMigrate({
    connectionString: databaseUrl,
    migrationsFolder: options.migrationsFolder ?? migrationsFolder,
    placeholders: { ':DATABASE_VISITOR': visitorRole },
    ...(options.quiet ? { logger: quietLogger } : {}),
  });
  // graphile-migrate keeps its pool open for 200 ms after the last use: a
  // server stopped within that time (a SIGTERM right after start, stopping
  // an embedded PostgreSQL) found the pool's idle connection terminated and
  // exited 1 on its error. Close it now.
  clearAllPools();
}

/**
 * Everything a database needs before the service serves from it: the
 * request role, the committed migrations and graphile-worker's schema
 * (`npm run migrate`, and every instance at start). One process at a time
 * per database: graphile-migrate's own lock is try-or-fail ("Failed to get
 * exclusive lock"), so N instances started together on an unmigrated
 * database made all but one exit; here each waits on a session advisory
 * lock, and the ones that come second find nothing left to do. The lock
 * is held by a connection of its own and goes with it, also on a crash.
 */
export async function setUpDatabase(
  databaseUrl: string,
  visitorRole: string,
  options: { quiet?: boolean; migrationsFolder?: string } = {},
): Promise<void> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query(`select pg_advisory_lock(hashtext('signalbox.migrate'))`);
    await ensureRoles(databaseUrl, visitorRole);
    await migrateDatabase(databaseUrl, visitorRole, options);
    await migrateWorkerSchema(databaseUrl);
  } finally {
    await lock.end();
  }
}
