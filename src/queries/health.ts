import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

const okRow = z.object({ ok: z.number() });

/** Resolves when the database answers within `timeoutMs`, rejects otherwise. */
export async function pingDatabase(connection: CommonQueryMethods, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`database did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([connection.oneFirst(sql.type(okRow)`select 1 as ok`), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
