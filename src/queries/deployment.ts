import crypto from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

const identityRow = z.object({ name: z.string(), server: z.string() });

/**
 * What tells this deployment's database apart from every other: the
 * cluster's system identifier (unique per initdb; pg_control_system() needs
 * superuser or pg_monitor, else the server's address and port stand in) and
 * the database's name. Hashed, so keys in a shared Redis name no database.
 */
export async function deploymentIdentity(connection: CommonQueryMethods): Promise<string> {
  let row: z.infer<typeof identityRow>;
  try {
    row = await connection.one(sql.type(identityRow)`
      select current_database() as name, (select system_identifier::text from pg_control_system()) as server`);
  } catch {
    row = await connection.one(sql.type(identityRow)`
      select current_database() as name,
             coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port') as server`);
  }
  return crypto.createHash('sha256').update(`${row.server}/${row.name}`).digest('hex').slice(0, 16);
}

const privilegesRow = z.object({ role: z.string(), superuser: z.boolean(), ownsSchema: z.boolean() });

/** Who the service's connections log in as, and whether that role is a superuser or owns the schema. */
export async function runtimePrivileges(connection: CommonQueryMethods): Promise<z.infer<typeof privilegesRow>> {
  return connection.one(sql.type(privilegesRow)`
    select session_user as role,
           (select rolsuper from pg_roles where rolname = session_user) as superuser,
           exists (select from pg_namespace n join pg_roles r on r.oid = n.nspowner
                    where n.nspname = 'app_public' and pg_has_role(session_user, r.oid, 'MEMBER')) as "ownsSchema"
  `);
}
