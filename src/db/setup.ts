import { Logger, migrate as graphileMigrate } from 'graphile-migrate';
// Not re-exported by the package's index; pinned version (package.json).
import { clearAllPools } from 'graphile-migrate/dist/pgReal';
import pg from 'pg';
import { createPool, sql } from 'slonik';
import { z } from 'zod';
import { migrateWorkerSchema } from '../jobs/worker';
import { migrationsFolder } from '../paths';


/** The runtime role: its name, and a password to set (none: it keeps the one it has). */
export type Authenticator = { name: string; password?: string };

const roleRow = z.object({ startsAs: z.string().nullable(), isVisitor: z.boolean() });

/**
 * The cluster's roles (docs/database.md, "Roles"): the visitor, which every request
 * runs as (NOLOGIN, no BYPASSRLS), and the authenticator, which the service
 * connects as (LOGIN NOINHERIT, a member of the visitor only, its sessions
 * starting as the visitor: it can be nothing else). The connecting role
 * (the owner, which runs this) becomes a member of the visitor too, so that
 * scripts and jobs can take its part. Roles are cluster-wide, so this is a
 * setup step, not a migration (a migration would fail on the second
 * database of a cluster); it changes only what is missing, so a role a DBA
 * set up (db/roles.sql) is left as it is.
 */
export async function ensureRoles(databaseUrl: string, visitorRole: string, authenticator?: Authenticator): Promise<void> {
  const pool = await createPool(databaseUrl, { maximumPoolSize: 1 });
  const role = (name: string) => sql.identifier([name]);
  // Another process may create a role between our check and our create.
  const create = async (statement: ReturnType<typeof sql.unsafe>) => {
    try {
      await pool.query(statement);
    } catch (error) {
      if ((error as { cause?: { code?: string } }).cause?.code !== '42710') throw error;
    }
  };
  try {
    const find = (name: string) =>
      pool.maybeOne(sql.type(roleRow)`
        select (select substring(c from 6) from pg_db_role_setting s, unnest(s.setconfig) c
                 where s.setrole = r.oid and s.setdatabase = 0 and c like 'role=%') as "startsAs",
               pg_has_role(r.oid, ${visitorRole}, 'MEMBER') as "isVisitor"
          from pg_roles r where r.rolname = ${name}`);
    if (!(await find(visitorRole))) await create(sql.unsafe`create role ${role(visitorRole)} nologin`);
    // SET ROLE needs membership (a superuser has it implicitly).
    const member = await pool.oneFirst(sql.type(z.object({ member: z.boolean() }))`select pg_has_role(current_user, ${visitorRole}, 'MEMBER') as member`);
    if (!member) await pool.query(sql.unsafe`grant ${role(visitorRole)} to current_user`);
    if (authenticator) {
      let found = await find(authenticator.name);
      if (!found) {
        await create(sql.unsafe`create role ${role(authenticator.name)} login noinherit`);
        found = await find(authenticator.name);
      }
      if (!found?.isVisitor) await pool.query(sql.unsafe`grant ${role(visitorRole)} to ${role(authenticator.name)}`);
      if (found?.startsAs !== visitorRole) {
        await pool.query(sql.unsafe`alter role ${role(authenticator.name)} set role = ${sql.literalValue(visitorRole)}`);
      }
      if (authenticator.password !== undefined) {
        await pool.query(sql.unsafe`alter role ${role(authenticator.name)} password ${sql.literalValue(authenticator.password)}`);
      }
    }
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
 * roles, the committed migrations and graphile-worker's schema
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
  options: { quiet?: boolean; migrationsFolder?: string; authenticator?: Authenticator } = {},
): Promise<void> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query(`select pg_advisory_lock(hashtext('signalbox.migrate'))`);
    await ensureRoles(databaseUrl, visitorRole, options.authenticator);
    await migrateDatabase(databaseUrl, visitorRole, options);
    await migrateWorkerSchema(databaseUrl);
  } finally {
    await lock.end();
  }
}
