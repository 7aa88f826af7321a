import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { HttpError, mapDatabaseError, sqlStateOf } from '../http-errors';

type ErrorBody = { statusCode: number; error: string; message: string; code: string; details?: unknown };

const reasons: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function body(statusCode: number, code: string, message: string, details?: unknown): ErrorBody {
  return { statusCode, error: reasons[statusCode] ?? 'Error', message, code, ...(details === undefined ? {} : { details }) };
}

/** Turns any thrown error into the API's error shape; only real faults are 500s. */
export function toErrorBody(error: FastifyError | Error): ErrorBody {
  if (error instanceof HttpError) return body(error.statusCode, error.code, error.message, error.details);
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.map((v) => ({
      field: [error.validationContext, ...v.params.issue.path].filter((p) => p !== undefined).join('.'),
      message: v.params.issue.message,
    }));
    const summary = details.map((d) => `${d.field}: ${d.message}`).join('; ');
    return body(400, 'VALIDATION_ERROR', `invalid request: ${summary}`, details);
  }
  const mapped = mapDatabaseError(error);
  if (mapped) return body(mapped.statusCode, mapped.code, mapped.message);
  const status = (error as FastifyError).statusCode;
  // Fastify's own client errors: malformed JSON, body too large, bad media type…
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return body(status, (error as FastifyError).code ?? 'BAD_REQUEST', error.message);
  }
  return body(500, 'INTERNAL', 'internal server error');
}

async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error, request, reply) => {
    // The client went away (closed the socket mid-body, reset it): nobody
    // to answer, and nothing wrong with the server or the database (its
    // ECONNRESET once read as "database unavailable", at error level, with
    // a stack, for every aborted upload).
    // The socket, not the request stream: a request whose body was read is
    // a destroyed stream (autoDestroy) while its client still waits.
    if (request.raw.socket?.destroyed) {
      request.log.info({ code: (error as { code?: unknown }).code }, 'client closed the connection before the answer');
      return reply.hijack();
    }
    const payload = toErrorBody(error as Error);
    if (payload.statusCode >= 500 && payload.code !== 'DATABASE_BUSY') request.log.error({ err: error }, 'request failed');
    else if (payload.statusCode >= 500) request.log.warn({ code: payload.code, sqlstate: sqlStateOf(error) }, payload.message);
    else request.log.info({ code: payload.code, statusCode: payload.statusCode }, payload.message);
    if (error instanceof HttpError && error.statusCode === 401) reply.header('WWW-Authenticate', 'Bearer');
    if (error instanceof HttpError && error.headers) reply.headers(error.headers);
    if (payload.code === 'DATABASE_UNAVAILABLE') reply.header('Retry-After', '5');
    if (payload.code === 'DATABASE_BUSY') reply.header('Retry-After', '1');
    return reply.code(payload.statusCode).send({ ...payload, requestId: request.id });
  });
  // An answer that says nothing about caching is not to be stored anywhere:
  // every API answer is about its caller (the views that may be revalidated
  // set their own private, no-cache with an ETag; static files their own).
  app.addHook('onSend', async (_request, reply, payload) => {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ ...body(404, 'NOT_FOUND', `route ${request.method} ${request.url.split('?')[0]} not found`), requestId: request.id }),
  );
}

export default fp(errorsPlugin, { name: 'errors', fastify: '5.x' });
