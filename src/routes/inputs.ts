import { z } from 'zod';

/**
 * Input schemas shared by the routes. Everything from outside is hostile
 * until it passes one of these: unknown fields are rejected (.strict()),
 * ids must be plain positive integers, text must not carry NUL characters.
 */

/** A path id: digits only (no "1e3", "0x10", "-1", " 7"), within int8 and JS range. */
export const idParam = z
  .string()
  .regex(/^[1-9][0-9]{0,14}$/, 'must be a positive integer id')
  .transform(Number);

export const idParams = z.object({ id: idParam }).strict();

export const bodyId = z.number().int('must be an integer').positive().max(Number.MAX_SAFE_INTEGER);

const noNul = (s: string) => !s.includes('\u0000');

/** Message text: 1-10,000 characters after trimming, stored trimmed. */
export const content = z
  .string()
  .refine(noNul, 'must not contain NUL characters')
  .transform((s) => s.trim())
  .pipe(z.string().min(1, 'must not be empty').max(10_000, 'must be at most 10000 characters'));

/** A report's reason: 1-1,000 characters after trimming, no NUL. */
export const reportReason = z
  .string()
  .refine(noNul, 'must not contain NUL characters')
  .transform((s) => s.trim())
  .pipe(z.string().min(1, 'must not be empty').max(1000, 'must be at most 1000 characters'));

export const username = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.string().regex(/^[a-z0-9_]{3,32}$/, 'must be 3-32 characters of a-z, 0-9 and _'));

export const password = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(256, 'must be at most 256 characters')
  .refine(noNul, 'must not contain NUL characters');

export const displayName = z
  .string()
  .refine(noNul, 'must not contain NUL characters')
  .transform((s) => s.trim())
  .pipe(z.string().min(1).max(100));

/** ?limit=1..max, digits only. */
export function limitParam(max: number, fallback: number) {
  return z
    .string()
    .regex(/^[0-9]{1,4}$/, `must be an integer from 1 to ${max}`)
    .transform(Number)
    .pipe(z.number().min(1, 'must be at least 1').max(max, `must be at most ${max}`))
    .default(String(fallback));
}

/** ?limit=1..100 (default 50) & ?before=<id>. */
export const pageQuery = z
  .object({
    limit: limitParam(100, 50),
    before: idParam.optional(),
  })
  .strict();

export const errorBody = z.object({
  statusCode: z.number(),
  error: z.string(),
  message: z.string(),
  code: z.string(),
  details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  /** The request's id (X-Request-Id): the same in the logs and in the database's application_name. */
  requestId: z.string().optional(),
});

/** The error responses a route documents, all with the same body. */
export function errors(...codes: number[]): Record<number, typeof errorBody> {
  return Object.fromEntries(codes.map((c) => [c, errorBody]));
}
