import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { messageJson } from './messages';
import { visibleTo } from './participants';
import { messageRow } from './schemas';

/**
 * Full-text search over the caller's own messages (sent and received):
 * `search @@ websearch_to_tsquery('english', q)` over messages_search_idx
 * (migration 000009), found by app_public.search_hits (000011: the index
 * cannot serve @@ under row-level security), the rows then read under RLS
 * and scoped like every other query, optionally to one conversation. Ranked by ts_rank, newest
 * first among equal ranks; keyset-paginated on (rank, id). Bounded (migration
 * 000015): only the caller's newest SEARCH_RANK_WINDOW matches are ranked,
 * and the search's statements stop after SEARCH_TIMEOUT_MS.
 *
 * Snippets come from ts_headline with the matches between \u0002 and \u0003
 * (removed from the content first, so only PostgreSQL's marks remain) and
 * are returned as segments, {text, match}: no markup ever, the client
 * renders text. ts_headline runs on the page's rows only.
 */

export const snippetSegment = z.object({ text: z.string(), match: z.boolean() });
export const searchHit = z.object({ message: messageRow, rank: z.number(), snippet: z.array(snippetSegment) });

/** A position in the result order: the last hit's rank (float4, as text) and id. */
export type SearchCursor = { rank: number; id: number };

export const encodeCursor = (c: SearchCursor) => `${c.rank}_${c.id}`;
export function decodeCursor(text: string): SearchCursor | null {
  const m = /^([0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)_([1-9][0-9]{0,14})$/.exec(text);
  return m ? { rank: Number(m[1]), id: Number(m[2]) } : null;
}

const hitRow = z.object({ id: z.number(), rank: z.number(), message: z.string(), snippet: z.string() });

const START = '\u0002';
const STOP = '\u0003';

/** ts_headline's text with its marks, as segments. */
function segments(marked: string): z.infer<typeof snippetSegment>[] {
  const out: z.infer<typeof snippetSegment>[] = [];
  let match = false;
  for (const part of marked.split(/([\u0002\u0003])/)) {
    if (part === START) match = true;
    else if (part === STOP) match = false;
    else if (part) out.push({ text: part, match });
  }
  return out;
}

/** What one search may cost: its statements' time (set by the caller's transaction), and how many of the newest matches it ranks. */
export type SearchBudget = { timeoutMs: number; rankWindow: number };

export async function searchMessages(
  connection: CommonQueryMethods,
  me: number,
  input: { q: string; with?: number | undefined; limit: number; after?: SearchCursor | undefined },
  rankWindow: number,
): Promise<{ hits: string[]; nextCursor: string | null }> {
  const other = input.with ?? null;
  const after = input.after ?? null;
  // The hits come from app_public.search_hits (migration 000011): under
  // row-level security `@@` could only filter the caller's rows, never use
  // the GIN index. It scopes by the caller itself; the rows are then read
  // here under RLS, as every query is.
  const query = sql.fragment`websearch_to_tsquery('english', ${input.q})`;
  const rows = await connection.any(sql.type(hitRow)`
    select m.id, h.rank, ${messageJson} as message,
           ts_headline('english', translate(m.content, ${START + STOP}, '  '), ${query},
                       ${`StartSel=${START}, StopSel=${STOP}, MaxWords=35, MinWords=15`}) as snippet
      from app_public.search_hits(${query}, ${other}::bigint, ${after?.rank ?? null}::real, ${after?.id ?? null}::bigint,
                                   ${input.limit + 1}, ${rankWindow}::int) h
      join app_public.messages m on m.id = h.id
     where ${visibleTo(me)}
     order by h.rank desc, h.id desc
  `);
  // Each hit as JSON text (searchHit's shape): the message as PostgreSQL
  // wrote it, passed through, not parsed and written again.
  const hits = rows
    .slice(0, input.limit)
    .map((r) => `{"message":${r.message},"rank":${JSON.stringify(r.rank)},"snippet":${JSON.stringify(segments(r.snippet))}}`);
  const last = rows.length > input.limit ? rows[input.limit - 1] : undefined;
  return { hits, nextCursor: last ? encodeCursor({ rank: last.rank, id: last.id }) : null };
}
