import { z } from 'zod';

/**
 * Row schemas shared by queries (Slonik validates every row against them)
 * and routes (the response schemas and the OpenAPI document). Columns are
 * aliased to camelCase in SQL, so a row is already the API's shape.
 */
export const userRow = z.object({
  id: z.number().int(),
  username: z.string(),
  displayName: z.string().nullable(),
  createdAt: z.string(),
});
export type User = z.infer<typeof userRow>;

export const messageRow = z.object({
  id: z.number().int(),
  senderId: z.number().int(),
  receiverId: z.number().int().nullable(),
  groupId: z.number().int().nullable(),
  parentMessageId: z.number().int().nullable(),
  /** null once the message is unsent (deletedAt set). */
  content: z.string().nullable(),
  sentAt: z.string(),
  edited: z.boolean(),
  editedAt: z.string().nullable(),
  read: z.boolean(),
  readAt: z.string().nullable(),
  replyCount: z.number().int(),
  deletedAt: z.string().nullable(),
});
export type Message = z.infer<typeof messageRow>;

// Schemas are built once, at module load: constructing zod schemas per call
// showed up in the request profile.
export const existsRow = z.object({ exists: z.boolean() });
export const idRow = z.object({ id: z.number() });
export const countHead = z.number();
