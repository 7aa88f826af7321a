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
