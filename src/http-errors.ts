import {
  CheckIntegrityConstraintViolationError,
  ForeignKeyIntegrityConstraintViolationError,
  InvalidInputError,
  NotNullIntegrityConstraintViolationError,
  UniqueIntegrityConstraintViolationError,
} from 'slonik';
import { isDatabaseUnavailable } from './db/errors';

/** An error whose status, stable code and message go to the client as-is. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Headers the answer must carry (Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (what = 'resource') => new HttpError(404, 'NOT_FOUND', `${what} not found`);
export const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);
export const unauthorized = (message = 'authentication required') => new HttpError(401, 'UNAUTHORIZED', message);
/** 503 DATABASE_BUSY: the database could not take this in time (the error handler adds Retry-After). */
export const databaseBusy = (message: string) => new HttpError(503, 'DATABASE_BUSY', message);
/** 429 with Retry-After: a budget is spent for `seconds` more (`code`: which budget). */
export const rateLimited = (message: string, seconds: number, code = 'RATE_LIMITED') =>
  new HttpError(429, code, message, undefined, { 'Retry-After': String(Math.max(1, seconds)) });

type Mapped = { statusCode: number; code: string; message: string };

/**
 * The SQLSTATEs the schema raises (docs/database.md) and the
 * generic ones a hostile input can reach. Anything else is a real 500.
 */
const bySqlState: Record<string, Mapped> = {
  SB001: { statusCode: 422, code: 'REPLY_CONVERSATION_MISMATCH', message: 'a reply must be in the same conversation as its parent' },
  SB002: { statusCode: 422, code: 'IMMUTABLE_FIELD', message: 'sender, receiver, parent and sending time cannot change' },
  SB003: { statusCode: 403, code: 'NOT_SENDER', message: 'only the sender may edit a message' },
  SB004: { statusCode: 403, code: 'NOT_RECEIVER', message: 'only the receiver may mark a message read' },
  SB005: { statusCode: 404, code: 'NOT_FOUND', message: 'parent message not found' },
  SB006: { statusCode: 422, code: 'DERIVED_FIELD', message: 'edited, read times, reply counts and thread position are maintained by the server' },
  SB007: { statusCode: 403, code: 'BLOCKED', message: 'the receiver has blocked you' },
  // Not a member of the group, or not a group at all: like any conversation
  // the caller is not in, it does not exist for them.
  SB008: { statusCode: 404, code: 'NOT_FOUND', message: 'group not found' },
  SB009: { statusCode: 422, code: 'GROUP_FULL', message: 'a group has at most 1000 members' },
  SB011: { statusCode: 403, code: 'ACCOUNT_SUSPENDED', message: 'this account is suspended' },
  SB012: { statusCode: 409, code: 'ALREADY_RESOLVED', message: 'that report is resolved already' },
  '42501': { statusCode: 403, code: 'FORBIDDEN', message: 'not allowed' },
  '22001': { statusCode: 400, code: 'VALUE_TOO_LONG', message: 'a value is too long' },
  '22003': { statusCode: 400, code: 'NUMBER_OUT_OF_RANGE', message: 'a number is out of range' },
  '22021': { statusCode: 400, code: 'INVALID_CHARACTER', message: 'text contains a character that cannot be stored (NUL)' },
  '22P02': { statusCode: 400, code: 'INVALID_INPUT', message: 'a value has the wrong format' },
  '54001': { statusCode: 400, code: 'TOO_COMPLEX', message: 'the request is too complex' },
  // The database could not do it in time: a statement over its timeout, a
  // row lock not had within lock_timeout, a transaction that kept losing
  // to others (Slonik's retries spent). The request was fine; it may be
  // repeated (Retry-After).
  '57014': { statusCode: 503, code: 'DATABASE_BUSY', message: 'the database could not answer in time; try again shortly' },
  '55P03': { statusCode: 503, code: 'DATABASE_BUSY', message: 'the rows this needs are locked right now; try again shortly' },
  '40001': { statusCode: 503, code: 'DATABASE_BUSY', message: 'a concurrent change got in the way; try again' },
  '40P01': { statusCode: 503, code: 'DATABASE_BUSY', message: 'a concurrent change got in the way; try again' },
};

/** Constraint names that deserve a precise answer instead of a generic one. */
const byConstraint: Record<string, Mapped> = {
  users_username_key: { statusCode: 409, code: 'USERNAME_TAKEN', message: 'that username is taken' },
  messages_content_length: { statusCode: 400, code: 'INVALID_CONTENT', message: 'content must be 1-10000 characters after trimming' },
  messages_depth_limit: { statusCode: 422, code: 'THREAD_TOO_DEEP', message: 'a thread may be at most 1000 replies deep' },
  messages_sender_id_fkey: { statusCode: 404, code: 'NOT_FOUND', message: 'sender not found' },
  messages_receiver_id_fkey: { statusCode: 404, code: 'NOT_FOUND', message: 'receiver not found' },
  reports_once: { statusCode: 409, code: 'ALREADY_REPORTED', message: 'you reported that message already' },
  reports_not_own: { statusCode: 422, code: 'OWN_MESSAGE', message: 'you cannot report your own message' },
  messages_group_id_fkey: { statusCode: 404, code: 'NOT_FOUND', message: 'group not found' },
  conversation_members_user_id_fkey: { statusCode: 404, code: 'NOT_FOUND', message: 'user not found' },
  messages_parent_message_id_fkey: { statusCode: 404, code: 'NOT_FOUND', message: 'parent message not found' },
};

export function sqlStateOf(error: unknown): string | undefined {
  if (error instanceof InvalidInputError) return '22P02';
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e.cause?.code === 'string') return e.cause.code;
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  return undefined;
}

const databaseUnavailable: Mapped = {
  statusCode: 503,
  code: 'DATABASE_UNAVAILABLE',
  message: 'the database cannot be reached right now; try again shortly',
};

/** Maps a database error to a client error, or undefined when it is a server fault. */
export function mapDatabaseError(error: unknown): Mapped | undefined {
  if (isDatabaseUnavailable(error)) return databaseUnavailable;
  const constraint = (error as { constraint?: string | null }).constraint;
  if (constraint && byConstraint[constraint]) return byConstraint[constraint];
  if (error instanceof UniqueIntegrityConstraintViolationError) {
    return { statusCode: 409, code: 'CONFLICT', message: 'that already exists' };
  }
  if (error instanceof ForeignKeyIntegrityConstraintViolationError) {
    return { statusCode: 404, code: 'NOT_FOUND', message: 'a referenced resource was not found' };
  }
  if (error instanceof CheckIntegrityConstraintViolationError || error instanceof NotNullIntegrityConstraintViolationError) {
    return { statusCode: 400, code: 'CONSTRAINT_VIOLATION', message: 'the request breaks a data rule' };
  }
  const state = sqlStateOf(error);
  return state ? bySqlState[state] : undefined;
}
