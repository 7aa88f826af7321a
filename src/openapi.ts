/**
 * The last pass over the generated OpenAPI document (@fastify/swagger's
 * transformObject), so that it describes what the service really answers:
 *
 * - the responses every route shares are listed on every route that can
 *   give them: 401 (and the cookie CSRF 403 for writes) behind
 *   authentication, with 429 (the per-user budget), 400/413/415 wherever a
 *   body is parsed, 503 wherever the database is asked;
 * - every error lists the `code` values its status carries, with an example;
 * - every response has a description; 204 and 304 have no body; the live
 *   stream is text/event-stream only;
 * - cookie authentication is a security scheme beside the bearer token.
 *
 * test/openapi.test.ts validates the document and checks that every error a
 * battery of real requests produced is listed on its route.
 */

type Json = Record<string, unknown>;

/** Every `code` the API answers with, by status (docs/api.md, "Error codes"). */
export const ERROR_CODES: Record<number, string[]> = {
  400: [
    'VALIDATION_ERROR', 'INVALID_CURSOR', 'INVALID_INPUT', 'INVALID_CONTENT', 'INVALID_CHARACTER', 'VALUE_TOO_LONG',
    'NUMBER_OUT_OF_RANGE', 'CONSTRAINT_VIOLATION', 'TOO_COMPLEX', 'FST_ERR_CTP_INVALID_JSON_BODY',
    'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
  ],
  401: ['UNAUTHORIZED'],
  403: ['FORBIDDEN', 'NOT_SENDER', 'NOT_RECEIVER', 'CSRF'],
  404: ['NOT_FOUND'],
  409: ['USERNAME_TAKEN', 'CONFLICT', 'IDEMPOTENCY_KEY_REUSED'],
  413: ['FST_ERR_CTP_BODY_TOO_LARGE'],
  415: ['FST_ERR_CTP_INVALID_MEDIA_TYPE'],
  422: ['REPLY_CONVERSATION_MISMATCH', 'IMMUTABLE_FIELD', 'DERIVED_FIELD', 'THREAD_TOO_DEEP'],
  429: ['RATE_LIMITED', 'TOO_MANY_STREAMS'],
  503: ['DATABASE_UNAVAILABLE', 'DATABASE_BUSY', 'PASSWORD_CHECKS_BUSY'],
};

const DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified: the ETag in If-None-Match still matches (no body)',
  400: 'Bad Request: the request is malformed or fails validation (`details` lists the fields)',
  401: 'Unauthorized: no, a malformed, an expired or a revoked token or session cookie',
  403: 'Forbidden: visible but not yours to change, or a cookie-authenticated write without the X-Signalbox-Client header (CSRF)',
  404: 'Not Found: does not exist, or is not visible to the caller (the same answer, so ids cannot be probed)',
  409: 'Conflict',
  413: 'Payload Too Large: the body exceeds BODY_LIMIT_BYTES',
  415: 'Unsupported Media Type: bodies are application/json',
  422: 'Unprocessable Entity: breaks a rule of the conversation (the database says which)',
  429: 'Too Many Requests: a budget is spent; Retry-After says when to try again',
  503: 'Service Unavailable: the database cannot be reached or is busy (no connection or row lock in time), or password checks are saturated; Retry-After says when to try again',
};

const PUBLIC = new Set(['/healthz', '/auth/register', '/auth/login']);
const WRITES = new Set(['post', 'put', 'patch', 'delete']);

function errorResponse(status: number): Json {
  const codes = ERROR_CODES[status] ?? ['INTERNAL'];
  return {
    description: DESCRIPTIONS[status] ?? 'Error',
    ...(status === 429 || status === 503 ? { headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } } } : {}),
    content: {
      'application/json': {
        schema: {
          type: 'object',
          required: ['statusCode', 'error', 'message', 'code'],
          properties: {
            statusCode: { type: 'integer', enum: [status] },
            error: { type: 'string' },
            message: { type: 'string' },
            code: { type: 'string', enum: codes },
            details: {
              type: 'array',
              items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
            },
          },
        },
        example: { statusCode: status, error: (DESCRIPTIONS[status] ?? 'Error').split(':')[0], message: '…', code: codes[0] },
      },
    },
  };
}

export function describeService(document: Json): Json {
  const components = (document.components ??= {}) as Json;
  const schemes = (components.securitySchemes ??= {}) as Json;
  schemes.cookie = {
    type: 'apiKey',
    in: 'cookie',
    name: 'signalbox_session',
    description: 'The web client\'s HttpOnly session cookie (set by login). Writes with it also need the header X-Signalbox-Client (CSRF defence).',
  };
  document.security = [{ bearer: [] }, { cookie: [] }];

  const paths = (document.paths ?? {}) as Record<string, Record<string, Json>>;
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const responses = (operation.responses ??= {}) as Record<string, Json>;
      const isPublic = PUBLIC.has(path);
      if (isPublic) operation.security = [];
      const statuses = new Set(Object.keys(responses).map(Number));
      // Behind authentication: 401, and 429 (each user's request budget).
      if (!isPublic) [401, 429].forEach((s) => statuses.add(s));
      if (!isPublic && WRITES.has(method)) statuses.add(403);
      if (operation.requestBody) [400, 413, 415].forEach((s) => statuses.add(s));
      if (operation.parameters) statuses.add(400);
      statuses.add(503);
      for (const status of [...statuses].sort()) {
        const key = String(status);
        if (status >= 400) {
          responses[key] = errorResponse(status);
        } else if (status === 204 || status === 304) {
          responses[key] = { description: DESCRIPTIONS[key] };
        } else {
          const response = responses[key]!;
          if (response.description === 'text/event-stream') {
            // The live stream (its zod schema is a described string).
            response.description = 'A stream of server-sent events: `notification` (id s<seq>), `reset`, heartbeat comments';
            response.content = { 'text/event-stream': { schema: { type: 'string' } } };
          } else if (!response.description || response.description === 'Default Response') {
            response.description = DESCRIPTIONS[key] ?? 'OK';
          }
        }
      }
    }
  }
  return document;
}
