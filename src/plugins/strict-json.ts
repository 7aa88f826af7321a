import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { HttpError } from '../http-errors';

declare global {
  interface String {
    /** ES2024, in Node since 20 (V8 11.1); not in TypeScript's ES2022 lib. */
    isWellFormed(): boolean;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

const malformed = (message: string) =>
  new HttpError(400, 'VALIDATION_ERROR', message, [{ field: 'body', message }]);

/** Every string in a parsed JSON value is well-formed UTF-16 (no lone surrogate). */
function wellFormed(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed();
  if (Array.isArray(value)) return value.every(wellFormed);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(([k, v]) => k.isWellFormed() && wellFormed(v));
  }
  return true;
}

/**
 * JSON bodies are refused, not altered, when they are not text: invalid
 * UTF-8 (Node's decoder would put U+FFFD in its place, and the message was
 * stored changed with a 201) and lone surrogates written as \ud800 escapes
 * (which PostgreSQL's UTF-8 cannot hold: the driver replaced them too) are
 * 400 VALIDATION_ERROR, and nothing is stored. Parsing itself is Fastify's
 * (secure-json-parse, prototype poisoning refused).
 */
async function strictJson(app: FastifyInstance): Promise<void> {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(malformed('the body is not valid UTF-8'), undefined);
    }
    parse(request, text, (error, value) => {
      if (error) return done(error, undefined);
      if (!wellFormed(value)) return done(malformed('the body contains a lone surrogate (\\ud800–\\udfff without its pair)'), undefined);
      done(null, value);
    });
  });
}

export default fp(strictJson, { name: 'strict-json', fastify: '5.x' });
