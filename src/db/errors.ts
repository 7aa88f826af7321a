import { BackendTerminatedError, BackendTerminatedUnexpectedlyError, ConnectionError } from 'slonik';

/**
 * The database is away, not the request wrong: no connection could be made
 * or kept (refused, terminated, shutting down, too many connections,
 * connections not allowed). The answer is 503 with Retry-After; if the
 * connection died at COMMIT the write may have happened, which is what
 * POST /messages' Idempotency-Key is for.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    error instanceof BackendTerminatedUnexpectedlyError
  ) {
    return true;
  }
  for (let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 4; depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH'].includes(code)) return true;
    if (typeof e.message === 'string' && /Connection terminated|connection timeout|Client has encountered a connection error|not currently accepting connections|the database system is (starting up|shutting down)/i.test(e.message)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * A read a replica could not serve but the primary may: the database away
 * as above, or a standby's recovery conflict (40001: replay cancelled the
 * query), which the primary never has for a read.
 */
export function replicaCannotServe(error: unknown): boolean {
  if (isDatabaseUnavailable(error)) return true;
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; depth++, e = e.cause as typeof e) {
    if (e.code === '40001') return true;
  }
  return false;
}
