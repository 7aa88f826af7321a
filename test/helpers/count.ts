import type { Interceptor } from 'slonik';

/**
 * Records every query a pool runs (Django's assertNumQueries, for Slonik).
 * `business()` leaves out the per-request plumbing: the session lookup and
 * the transaction-local role/user switch.
 */
export function queryRecorder(): { interceptor: Interceptor; queries: string[]; reset(): void; business(): string[] } {
  const queries: string[] = [];
  return {
    interceptor: {
      name: 'test/query-recorder',
      beforeQueryExecution: (_context, query) => {
        queries.push(query.sql);
        return null;
      },
    },
    queries,
    reset() {
      queries.length = 0;
    },
    business() {
      return queries.filter((q) => !q.includes('app_public.session_user_id(') && !q.includes("set_config('role'"));
    },
  };
}
