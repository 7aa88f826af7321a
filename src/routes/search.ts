import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { decodeCursor, searchHit, searchMessages, type SearchBudget } from '../queries/search';
import { HttpError } from '../http-errors';
import { errors, idParam, limitParam } from './inputs';

/** The search box: 1-200 characters after trimming, no control characters. */
const searchText = z
  .string()
  .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), 'must not contain control characters')
  .transform((s) => s.trim())
  .pipe(z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'));

const searchResults = z.object({ results: z.array(searchHit), nextCursor: z.string().nullable() });

export type SearchRouteOptions = SearchBudget;

/** GET /search; behind app.authenticate. */
const routes: FastifyPluginAsyncZod<SearchRouteOptions> = async (app, budget) => {
  app.get(
    '/search',
    {
      schema: {
        tags: ['search'],
        summary: 'Full-text search over the caller\'s own messages',
        description:
          'PostgreSQL full-text search (english) over the current content of the messages the caller sent or ' +
          'received; `q` in web-search syntax: words, "a phrase", `or`, `-excluded`. Ranked (ts_rank), newest ' +
          'first among equals. `with` limits it to the conversation with that user. Each result carries a ' +
          '`snippet` as segments `{text, match}` — plain text, never markup. Earlier versions of edited ' +
          'messages are not searched. A query of stop words only ("the") finds nothing. Pass `nextCursor` as ' +
          '`after` for the next page. A search is bounded: it ranks the caller\'s newest ' +
          `${budget.rankWindow} matches only (older ones are not found: narrow it with \`with\` or more words), and one ` +
          `that takes longer than ${budget.timeoutMs} ms is cancelled with 503 DATABASE_BUSY.`,
        querystring: z
          .object({
            q: searchText,
            with: idParam.optional(),
            limit: limitParam(50, 20),
            after: z.string().max(64).optional(),
          })
          .strict(),
        response: { 200: searchResults, ...errors(400, 401, 503) },
      },
    },
    async (request, reply) => {
      const { q, with: other, limit, after } = request.query;
      const cursor = after === undefined ? undefined : decodeCursor(after);
      if (cursor === null) throw new HttpError(400, 'INVALID_CURSOR', '`after` must be a nextCursor this search returned');
      // Past its time budget the search is cancelled (57014: 503
      // DATABASE_BUSY) instead of holding a connection others need.
      const { hits, nextCursor } = await request.readAsCaller(
        (tx, me) => searchMessages(tx, me, { q, with: other, limit, after: cursor }, budget.rankWindow),
        { statementTimeoutMs: budget.timeoutMs },
      );
      return reply.sendJson(`{"results":[${hits.join(',')}],"nextCursor":${JSON.stringify(nextCursor)}}`);
    },
  );
};

export default routes;
