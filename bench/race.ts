/**
 * Two API-shaped transactions racing on the same rows, as the lock-order
 * test (test/lock-order.test.ts) and its benchmark (bench/retention.ts)
 * run them: plain pg connections, no retry anywhere, so a deadlock reaches
 * the client as 40P01 and is counted, never hidden.
 */
import pg from 'pg';

export type Lane = { a: pg.Client; b: pg.Client };
export type Side = { user: number; statement: string; params: unknown[] };

/** `n` pairs of connections; deadlocks are found after 50 ms instead of 1 s, so a bad order costs seconds, not minutes. */
export async function openLanes(url: string, n: number): Promise<{ lanes: Lane[]; close: () => Promise<void> }> {
  const clients: pg.Client[] = [];
  const open = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`set deadlock_timeout = '50ms'`);
    clients.push(c);
    return c;
  };
  const lanes: Lane[] = [];
  for (let i = 0; i < n; i++) lanes.push({ a: await open(), b: await open() });
  return { lanes, close: async () => void (await Promise.all(clients.map((c) => c.end()))) };
}

/**
 * One transaction as src/db/transaction.ts runs it (the request role, the
 * caller, one statement, commit). `go` releases the statement, so both
 * sides of a pair start together. Returns the SQLSTATE of a failure (a
 * race's expected loser, e.g. a reply to a parent deleted first) or null.
 */
export async function asApi(client: pg.Client, visitorRole: string, side: Side, go: Promise<void>): Promise<string | null> {
  await client.query('begin');
  try {
    await client.query(`select set_config('role', $1, true), set_config('signalbox.user_id', $2, true)`, [visitorRole, String(side.user)]);
    await go;
    await client.query(side.statement, side.params);
    await client.query('commit');
    return null;
  } catch (error) {
    await client.query('rollback');
    return (error as { code?: string }).code ?? 'unknown';
  }
}

/** Runs `pairs` races across the lanes; returns every SQLSTATE the clients saw. */
export async function race(visitorRole: string, lanes: Lane[], pairs: number, pair: (i: number) => [Side, Side]): Promise<string[]> {
  const seen: string[] = [];
  let next = 0;
  await Promise.all(
    lanes.map(async ({ a, b }) => {
      for (let i = next++; i < pairs; i = next++) {
        const [x, y] = pair(i);
        let start!: () => void;
        const go = new Promise<void>((resolve) => (start = resolve));
        const both = Promise.all([asApi(a, visitorRole, x, go), asApi(b, visitorRole, y, go)]);
        setImmediate(start);
        for (const code of await both) if (code) seen.push(code);
      }
    }),
  );
  return seen;
}

/** pg_stat_database.deadlocks of `url`'s database, once its backends have reported. */
export async function deadlockCount(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    // Backends report their counters when they go idle; a fresh snapshot after that.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    await admin.query('select pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ deadlocks: string }>('select deadlocks from pg_stat_database where datname = current_database()');
    return Number(rows[0]!.deadlocks);
  } finally {
    await admin.end();
  }
}

export const STATEMENTS = {
  edit: `update app_public.messages set content = $2 where id = $1`,
  reply: `insert into app_public.messages (sender_id, parent_message_id, content) values (app_public.current_user_id(), $1, $2)`,
  markRead: `update app_public.messages set read = true where id = $1 and receiver_id = app_public.current_user_id()`,
  bulkMarkRead: `update app_public.messages set read = true where receiver_id = app_public.current_user_id() and read = false`,
  deleteSelf: `delete from app_public.users where id = app_public.current_user_id()`,
  groupSend: `insert into app_public.messages (sender_id, group_id, content) values (app_public.current_user_id(), $1, $2)`,
  leave: `select app_public.leave_group($1, app_public.current_user_id())`,
};

export type Scenario = { name: string; seen: string[]; ms: number };

/**
 * The six races of the lock order, 1,000 pairs each (the bulk one: five
 * 10,000-row mark-reads against 200 pairs of replies each), on the
 * database at `url`, with a connecting role that may switch to `visitorRole`.
 */
export async function lockOrderScenarios(url: string, visitorRole: string, lanesCount = 4): Promise<Scenario[]> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const { lanes, close } = await openLanes(url, lanesCount);
  const out: Scenario[] = [];
  const timed = async (name: string, fn: () => Promise<string[]>) => {
    const t0 = performance.now();
    const seen = await fn();
    out.push({ name, seen, ms: performance.now() - t0 });
  };
  try {
    const { rows: people } = await admin.query<{ id: string }>(
      `insert into app_public.users (username) values ('lock_sender'), ('lock_receiver') returning id`);
    const [s, r] = people.map((p) => Number(p.id)) as [number, number];
    const insert = async (n: number, content: string) =>
      (await admin.query<{ id: string }>(
        `insert into app_public.messages (sender_id, receiver_id, content) select $1, $2, $3 || g from generate_series(1, $4::int) g returning id`,
        [s, r, content, n])).rows.map((x) => Number(x.id));

    await timed('edit vs reply (one message)', async () => {
      const [p] = await insert(1, 'v');
      return race(visitorRole, lanes, 1000, (i) => [
        { user: s, statement: STATEMENTS.edit, params: [p, `edit ${i}`] },
        { user: r, statement: STATEMENTS.reply, params: [p, `reply ${i}`] },
      ]);
    });
    await timed('mark-read vs reply', async () => {
      const ids = await insert(1000, 'unread ');
      return race(visitorRole, lanes, 1000, (i) => [
        { user: r, statement: STATEMENTS.markRead, params: [ids[i]] },
        { user: s, statement: STATEMENTS.reply, params: [ids[i], `follow-up ${i}`] },
      ]);
    });
    await timed('10,000-row mark-read vs replies (5 x 200 pairs)', async () => {
      const seen: string[] = [];
      const bulk = new pg.Client({ connectionString: url });
      await bulk.connect();
      await bulk.query(`set deadlock_timeout = '50ms'`);
      try {
        for (let round = 0; round < 5; round++) {
          const ids = await insert(10_000, 'bulk ');
          let start!: () => void;
          const go = new Promise<void>((resolve) => (start = resolve));
          const reading = asApi(bulk, visitorRole, { user: r, statement: STATEMENTS.bulkMarkRead, params: [] }, go);
          // Replies to messages spread over the bulk update's rows, racing it.
          const replying = race(visitorRole, lanes, 200, (i) => [
            { user: s, statement: STATEMENTS.reply, params: [ids[(i * 50) % ids.length], `bulk reply ${round}.${i}`] },
            { user: s, statement: STATEMENTS.reply, params: [ids[(i * 50 + 25) % ids.length], `bulk reply ${round}.${i}b`] },
          ]);
          setTimeout(start, 5);
          const code = await reading;
          if (code) seen.push(code);
          seen.push(...(await replying));
        }
      } finally {
        await bulk.end();
      }
      return seen;
    });
    await timed('account deletion vs reply', async () => {
      const { rows } = await admin.query<{ id: string; m: string }>(
        `with u as (insert into app_public.users (username) select 'leaver_' || g from generate_series(1, 1000) g returning id)
         insert into app_public.messages (sender_id, receiver_id, content) select id, $1, 'from a leaver' from u
         returning sender_id as id, id as m`, [r]);
      return race(visitorRole, lanes, 1000, (i) => [
        { user: Number(rows[i]!.id), statement: STATEMENTS.deleteSelf, params: [] },
        { user: r, statement: STATEMENTS.reply, params: [Number(rows[i]!.m), `goodbye ${i}`] },
      ]);
    });
    await timed('account deletion vs group send (the member who leaves)', async () => {
      // 1,000 groups of four: the two raced users and two bystanders.
      const { rows } = await admin.query<{ id: string; g: string }>(
        `with u as (insert into app_public.users (username) select 'group_leaver_' || g from generate_series(1, 1000) g returning id),
              g as (insert into app_public.conversations (kind, title) select 'group', 'race ' || id from u returning id, title),
              m as (insert into app_public.conversation_members (conversation_id, user_id)
                    select g.id, x.user_id from g join u on g.title = 'race ' || u.id
                    cross join lateral (values (u.id), ($1::bigint), ($2::bigint)) x (user_id) returning 1)
         select u.id, g.id as g from u join g on g.title = 'race ' || u.id order by u.id`, [s, r]);
      return race(visitorRole, lanes, 1000, (i) => [
        { user: Number(rows[i]!.id), statement: STATEMENTS.deleteSelf, params: [] },
        { user: r, statement: STATEMENTS.groupSend, params: [Number(rows[i]!.g), `to the group ${i}`] },
      ]);
    });
    await timed('leave vs group send', async () => {
      const { rows } = await admin.query<{ g: string }>(
        `with g as (insert into app_public.conversations (kind, title) select 'group', 'leave race ' || i from generate_series(1, 1000) i returning id),
              m as (insert into app_public.conversation_members (conversation_id, user_id)
                    select g.id, x.user_id from g cross join (values ($1::bigint), ($2::bigint)) x (user_id) returning 1)
         select id as g from g order by id`, [s, r]);
      return race(visitorRole, lanes, 1000, (i) => [
        { user: s, statement: STATEMENTS.leave, params: [Number(rows[i]!.g)] },
        { user: r, statement: STATEMENTS.groupSend, params: [Number(rows[i]!.g), `before or after ${i}`] },
      ]);
    });
  } finally {
    await close();
    await admin.end();
  }
  return out;
}
