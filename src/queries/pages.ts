import { sql, type CommonQueryMethods, type FragmentSqlToken, type IdentifierSqlToken } from 'slonik';
import { z } from 'zod';

/**
 * Pagination and the one-statement "head + page" shape the list queries
 * share. (Row schemas live in schemas.ts.)
 */

/** Cursor pagination: rows come back newest first, one more than asked for. */
export type Page = { limit: number; before?: number | undefined };

export function paginate<T extends { id: number }>(rows: readonly T[], limit: number): { items: T[]; nextCursor: number | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? last.id : null };
}

/** The row schema with every column nullable: the empty side of a LEFT JOIN LATERAL. */
export function nullableColumns<R extends z.AnyZodObject>(row: R): z.ZodObject<{ [K in keyof R['shape']]: z.ZodNullable<R['shape'][K]> }> {
  return z.object(Object.fromEntries(Object.entries(row.shape).map(([k, v]) => [k, (v as z.ZodTypeAny).nullable()]))) as never;
}

const keysOf = new WeakMap<z.AnyZodObject, string[]>();
const pageKeys = (row: z.AnyZodObject): string[] => {
  let keys = keysOf.get(row);
  if (!keys) keysOf.set(row, (keys = Object.keys(row.shape)));
  return keys;
};

const headedSchemas = new WeakMap<z.AnyZodObject, WeakMap<z.ZodTypeAny, z.AnyZodObject>>();

/** The row schema with every column nullable (the empty lateral side) plus the head; cached. */
function headedSchema(row: z.AnyZodObject, head: z.ZodTypeAny): z.AnyZodObject {
  let byHead = headedSchemas.get(row);
  if (!byHead) headedSchemas.set(row, (byHead = new WeakMap()));
  let schema = byHead.get(head);
  if (!schema) {
    schema = nullableColumns(row).extend({ head });
    byHead.set(head, schema);
  }
  return schema;
}

/**
 * One statement that returns a one-row "head" (a count, or a row that must
 * exist) together with a page of rows: `head LEFT JOIN LATERAL page`. The
 * head row comes back even when the page is empty, so a count is never
 * lost; no head row at all means the head's subject does not exist. The
 * page may refer to the head as `head_row.head`.
 */
export async function headedPage<H extends z.ZodTypeAny, R extends z.AnyZodObject>(
  connection: CommonQueryMethods,
  spec: { head: FragmentSqlToken; headSchema: H; row: R; page: FragmentSqlToken },
): Promise<{ head: z.infer<H>; rows: z.infer<R>[] } | null> {
  const rows = await connection.any(sql.type(headedSchema(spec.row, spec.headSchema))`
    select head_row.head, p.* from (${spec.head}) head_row left join lateral (${spec.page}) p on true
  `);
  const first = rows[0];
  if (!first) return null;
  return {
    head: first.head as z.infer<H>,
    // The lateral side of an empty page is one row of NULLs; the rest are
    // the page's rows without the head column.
    rows: rows
      .filter((r) => pageKeys(spec.row).some((k) => (r as Record<string, unknown>)[k] !== null))
      .map(({ head: _head, ...row }) => row as z.infer<R>),
  };
}

/** `and <column> < before` when a cursor was given, nothing otherwise. */
export function beforeCursor(column: IdentifierSqlToken, before: number | undefined): FragmentSqlToken {
  return before === undefined ? sql.fragment`` : sql.fragment`and ${column} < ${before}`;
}
