import type pg from 'pg';

/**
 * The benchmark's dataset, generated in SQL in a few statements. Bulk
 * loading runs with session_replication_role = replica (no triggers, no FK
 * checks) and sets what the triggers would have set itself: thread root and
 * depth, reply counts, read_at, and a notification for every unread message
 * (the read 90 % would have had theirs read and are left out for speed).
 *
 * Shape at scale 1: 10,000 users and 1,000,000 messages, about 10 % unread;
 * user 1 has 100,000 messages (20 % of them with user 2, the heaviest
 * conversation); a thread of 10,000 replies with branching between users 3
 * and 4; a reply chain 1,000 deep between users 5 and 6; the rest spread over
 * the other users with a skew towards a few heavy senders.
 */
export type DatasetShape = {
  users: number;
  messages: number;
  heavyUserMessages: number;
  threadReplies: number;
  chainDepth: number;
};

export function shapeFor(scale: number): DatasetShape {
  const users = Math.max(100, Math.round(10_000 * scale));
  const messages = Math.max(20_000, Math.round(1_000_000 * scale));
  return {
    users,
    messages,
    heavyUserMessages: Math.round(messages / 10),
    threadReplies: Math.max(1000, Math.round(10_000 * scale)),
    chainDepth: 1000,
  };
}

export type Landmarks = {
  heavyUser: number;
  threadRoot: number;
  threadLeaf: number;
  chainRoot: number;
  chainLeaf: number;
};

export async function buildDataset(
  client: pg.Client,
  shape: DatasetShape,
  progress: (step: string) => void,
): Promise<Landmarks> {
  const { users, messages, heavyUserMessages: heavy, threadReplies: replies, chainDepth: chain } = shape;
  const threadRoot = heavy + 1;
  const chainRoot = threadRoot + replies + 1;
  const restStart = chainRoot + chain + 1;
  const exec = async (step: string, text: string, values: unknown[] = []) => {
    const started = Date.now();
    await client.query(text, values);
    progress(`${step} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };

  await client.query('set session_replication_role = replica');
  await exec(`${users.toLocaleString()} users`, `
    insert into app_public.users (id, username, created_at) overriding system value
    select g, 'user_' || g, now() - interval '400 days' from generate_series(1, $1::int) g`, [users]);

  // Every message gets: sent_at increasing with id; 10 % unread.
  const common = `now() - (${messages} - id) * interval '1 second'`;
  await exec(`${heavy.toLocaleString()} messages of user 1`, `
    insert into app_public.messages (id, sender_id, receiver_id, content, sent_at, read, read_at, thread_root_id, depth)
    overriding system value
    select id, case when id % 2 = 0 then 1 else partner end, case when id % 2 = 0 then partner else 1 end,
           'message ' || id || ' ' || repeat('lorem ipsum ', 1 + id % 20), ${common},
           r, case when r then ${common} end, id, 0
      from (select g as id, case when g % 5 = 0 then 2 else 2 + (g % least(1000, $2::int - 2)) end as partner,
                   random() > 0.1 as r
              from generate_series(1, $1::int) g) s`, [heavy, users]);
  await exec(`a thread of ${replies.toLocaleString()} replies`, `
    insert into app_public.messages (id, sender_id, receiver_id, parent_message_id, content, sent_at, read, read_at, thread_root_id, depth)
    overriding system value
    select id, case when i % 2 = 0 then 3 else 4 end, case when i % 2 = 0 then 4 else 3 end,
           case when i = 0 then null else $1::bigint + floor(random() * i)::bigint end,
           'thread message ' || i, ${common}, true, ${common}, $1::bigint, 0
      from (select $1::bigint + g as id, g as i from generate_series(0, $2::int) g) s`, [threadRoot, replies]);
  await exec(`a reply chain ${chain} deep`, `
    insert into app_public.messages (id, sender_id, receiver_id, parent_message_id, content, sent_at, read, read_at, thread_root_id, depth)
    overriding system value
    select id, case when i % 2 = 0 then 5 else 6 end, case when i % 2 = 0 then 6 else 5 end,
           case when i = 0 then null else id - 1 end, 'chain link ' || i, ${common}, true, ${common}, $1::bigint, i
      from (select $1::bigint + g as id, g as i from generate_series(0, $2::int) g) s`, [chainRoot, chain]);
  await exec(`${(messages - restStart + 1).toLocaleString()} messages among the other users`, `
    insert into app_public.messages (id, sender_id, receiver_id, content, sent_at, read, read_at, thread_root_id, depth)
    overriding system value
    select id, sender, case when receiver = sender then 7 + (receiver - 6) % ($3::int - 7) else receiver end,
           'message ' || id || ' ' || repeat('dolor sit amet ', (1 + id % 15)::int), ${common},
           r, case when r then ${common} end, id, 0
      from (select g as id,
                   7 + floor(power(random(), 3) * ($3::int - 7))::int as sender,
                   7 + floor(random() * ($3::int - 7))::int as receiver,
                   random() > 0.1 as r
              from generate_series($1::bigint, $2::bigint) g) s`, [restStart, messages, users]);
  await exec('thread depths', `
    with recursive t as (
      select id, 0 as depth from app_public.messages where id = $1::bigint
      union all
      select m.id, t.depth + 1 from app_public.messages m join t on m.parent_message_id = t.id
    )
    update app_public.messages m set depth = t.depth from t where m.id = t.id and m.depth <> t.depth`, [threadRoot]);
  await exec('reply counts', `
    update app_public.messages p set reply_count = c.n
      from (select parent_message_id, count(*) as n from app_public.messages
             where parent_message_id is not null group by parent_message_id) c
     where p.id = c.parent_message_id`);
  await exec('notifications for unread messages', `
    insert into app_public.notifications (user_id, message_id, kind, created_at, seq)
    select receiver_id, id, case when parent_message_id is null then 'message' else 'reply' end, sent_at,
           row_number() over (partition by receiver_id order by id)
      from app_public.messages where not read and sender_id <> receiver_id`);
  await exec('delivery counters', `
    insert into app_private.delivery_counters (user_id, last_seq)
    select user_id, max(seq) from app_public.notifications group by user_id`);
  await client.query('set session_replication_role = origin');
  await client.query(`select setval(pg_get_serial_sequence('app_public.users', 'id'), $1::bigint)`, [users]);
  await client.query(`select setval(pg_get_serial_sequence('app_public.messages', 'id'), $1::bigint)`, [messages]);
  await exec('vacuum analyze', 'vacuum analyze');

  const { rows: [leaf] } = await client.query(
    'select id from app_public.messages where thread_root_id = $1 order by depth desc, id limit 1', [threadRoot]);
  return {
    heavyUser: 1,
    threadRoot,
    threadLeaf: Number(leaf.id),
    chainRoot,
    chainLeaf: chainRoot + chain,
  };
}
