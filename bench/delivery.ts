/**
 * `npm run bench:delivery [-- --app DIR] [--only loss]`: live delivery
 * under concurrent senders, on two server processes against one database.
 *
 * 1. loss: 8 concurrent senders (alternating instances) send 600 messages
 *    to one receiver who holds three streams (one per instance, and one on
 *    instance 2 that disconnects halfway and resumes with Last-Event-ID).
 *    Lost and duplicated notifications per stream, against the table.
 * 2. latency: 1,000 streams over 1,000 users (500 per instance) under a
 *    send load to random receivers: from the send to the event, p50/p99,
 *    and sends per second with and without those streams open.
 * 3. cursor cost: single-row autocommit inserts with the seq trigger
 *    against the id-cursor trigger it replaced, interleaved.
 *
 * `--app DIR` runs another checkout's server and migrations (the loss run
 * of the commit before the seq cursor: `git worktree add /tmp/old <sha>`,
 * `npm ci && npm run build` there). Results go to bench/delivery.json;
 * REPORT.md quotes them. Only 127.0.0.1 is targeted; every loop is bounded.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { projectRoot } from '../src/paths';
import { openStream, type SseClient } from '../test/helpers/sse';
import { argValue, log, makeUsers, percentile, scratchDatabase, sleep, startServer, stopServer, type BenchUser as User } from './lib';

const APP = path.resolve(argValue('--app') ?? projectRoot);
const ONLY = argValue('--only');
const PORTS = [3997, 3998] as const;
const DB = 'signalbox_bench_delivery';

async function sendAs(port: number, from: User, receiverId: number, content: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${from.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ receiverId, content }),
  });
  if (res.status !== 201) throw new Error(`send: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: number }).id;
}

const messageIds = (c: SseClient) =>
  c.events.filter((e) => e.event === 'notification').map((e) => (JSON.parse(e.data) as { messageId: number }).messageId);

function lostAndDuplicated(received: number[], stored: Set<number>): { received: number; lost: number; duplicated: number } {
  const unique = new Set(received);
  return {
    received: received.length,
    lost: [...stored].filter((id) => !unique.has(id)).length,
    duplicated: received.length - unique.size,
  };
}

async function lossRun(client: pg.Client) {
  const [receiver, ...senders] = await makeUsers(client, 9);
  const auth = { authorization: `Bearer ${receiver!.token}` };
  const s1 = await openStream(`http://127.0.0.1:${PORTS[0]}/notifications/stream`, auth);
  const s2 = await openStream(`http://127.0.0.1:${PORTS[1]}/notifications/stream`, auth);
  let s3 = await openStream(`http://127.0.0.1:${PORTS[1]}/notifications/stream`, auth);
  let s3Before: number[] = [];
  const perSender = 75;
  let done = 0;
  await Promise.all(
    senders.map(async (s, i) => {
      for (let k = 0; k < perSender; k++) {
        await sendAs(PORTS[i % 2]!, s, receiver!.id, `m ${i}.${k}`);
        if (++done === (senders.length * perSender) / 2) {
          s3.close();
          await s3.closed;
          s3Before = messageIds(s3);
          const lastId = s3.events.filter((e) => e.event === 'notification').at(-1)?.id;
          s3 = await openStream(`http://127.0.0.1:${PORTS[1]}/notifications/stream`, { ...auth, ...(lastId ? { 'last-event-id': lastId } : {}) });
        }
      }
    }),
  );
  await sleep(3000);
  const { rows } = await client.query<{ message_id: string }>('select message_id from app_public.notifications where user_id = $1', [receiver!.id]);
  const stored = new Set(rows.map((r) => Number(r.message_id)));
  const result = {
    sends: senders.length * perSender,
    stored: stored.size,
    streamInstance1: lostAndDuplicated(messageIds(s1), stored),
    streamInstance2: lostAndDuplicated(messageIds(s2), stored),
    streamResumed: lostAndDuplicated([...s3Before, ...messageIds(s3)], stored),
  };
  [s1, s2, s3].forEach((s) => s.close());
  return result;
}

/** Sends from `senders` to random receivers for `seconds`; returns sends/s and the send times by message id. */
async function sendLoad(senders: User[], receivers: User[], seconds: number) {
  const sentAt = new Map<number, { start: number; acked: number }>();
  const until = Date.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    senders.map(async (s, i) => {
      while (Date.now() < until) {
        const to = receivers[Math.floor(Math.random() * receivers.length)]!;
        const start = performance.now();
        const id = await sendAs(PORTS[i % 2]!, s, to.id, 'load');
        sentAt.set(id, { start, acked: performance.now() });
        count++;
      }
    }),
  );
  return { rps: count / seconds, sentAt };
}

async function latencyRun(client: pg.Client) {
  const receivers = await makeUsers(client, 1000);
  const senders = await makeUsers(client, 8);
  const without = await sendLoad(senders, receivers, 10);
  log(`sends without streams: ${without.rps.toFixed(0)}/s`);

  const arrivals = new Map<number, number>();
  const streams: SseClient[] = [];
  for (const [i, r] of receivers.entries()) {
    const s = await openStream(`http://127.0.0.1:${PORTS[i % 2]}/notifications/stream`, { authorization: `Bearer ${r.token}` });
    streams.push(s);
  }
  // Arrival time of each event: poll the parsed events often (the parser
  // runs on each chunk; 1 ms polling bounds the measurement error).
  const seen = new Map<SseClient, number>();
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const now = performance.now();
      for (const s of streams) {
        const from = seen.get(s) ?? 0;
        for (let k = from; k < s.events.length; k++) {
          const e = s.events[k]!;
          if (e.event === 'notification') arrivals.set((JSON.parse(e.data) as { messageId: number }).messageId, now);
        }
        seen.set(s, s.events.length);
      }
      await sleep(1);
    }
  })();
  log('1,000 streams open');
  const withStreams = await sendLoad(senders, receivers, 10);
  await sleep(2000);
  polling = false;
  await poller;
  const fromSend: number[] = [];
  const fromAck: number[] = [];
  let missing = 0;
  for (const [id, t] of withStreams.sentAt) {
    const at = arrivals.get(id);
    if (at === undefined) {
      missing++;
      continue;
    }
    fromSend.push(at - t.start);
    fromAck.push(Math.max(0, at - t.acked));
  }
  streams.forEach((s) => s.close());
  return {
    streams: streams.length,
    sendsPerSecondWithoutStreams: without.rps,
    sendsPerSecondWithStreams: withStreams.rps,
    sends: withStreams.sentAt.size,
    eventsMissing: missing,
    latencyFromSendMs: { p50: percentile(fromSend, 50), p99: percentile(fromSend, 99) },
    latencyFromAckMs: { p50: percentile(fromAck, 50), p99: percentile(fromAck, 99) },
  };
}

/** The notification trigger this cursor replaced (migration 000001), for the cost comparison. */
const idCursorTrigger = `
create or replace function app_private.bench_notify_by_id() returns trigger
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp as $$
declare announced bigint;
begin
  with created as (
    insert into app_public.notifications (user_id, message_id, kind, seq)
    select n.receiver_id, n.id, case when n.parent_message_id is null then 'message' else 'reply' end,
           -n.id -- unique per row; the id cursor needed no seq
      from new_messages n where n.sender_id <> n.receiver_id order by n.id
    returning user_id, id
  )
  select count(pg_notify('signalbox_notifications', json_build_object('userId', user_id, 'notificationId', max_id)::text))
    from (select user_id, max(id) as max_id from created group by user_id) per_user into announced;
  return null;
end $$;
create trigger _500_bench_notify_by_id after insert on app_public.messages
  referencing new table as new_messages for each statement execute function app_private.bench_notify_by_id();
alter table app_public.messages disable trigger _500_bench_notify_by_id;`;

async function cursorCost(client: pg.Client) {
  const [a, b] = await makeUsers(client, 2);
  await client.query(idCursorTrigger);
  const timeInserts = async (n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await client.query('insert into app_public.messages (sender_id, receiver_id, content) values ($1, $2, $3)', [a!.id, b!.id, 'cost']);
    }
    return ((performance.now() - t0) / n) * 1000;
  };
  const seqUs: number[] = [];
  const idUs: number[] = [];
  for (let round = 0; round < 3; round++) {
    seqUs.push(await timeInserts(2000));
    await client.query('alter table app_public.messages disable trigger _500_notify_receiver, enable trigger _500_bench_notify_by_id');
    idUs.push(await timeInserts(2000));
    await client.query('alter table app_public.messages enable trigger _500_notify_receiver, disable trigger _500_bench_notify_by_id');
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[1]!;
  return { seqCursorUsPerInsert: median(seqUs), idCursorUsPerInsert: median(idUs), rounds: 3, insertsPerRound: 2000 };
}

async function main(): Promise<void> {
  const { url: dbUrl, drop } = await scratchDatabase(DB, path.join(APP, 'migrations'));
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const env = { SSE_MAX_STREAMS_PER_USER: '10' };
  const servers = [await startServer(dbUrl, PORTS[0], env, APP), await startServer(dbUrl, PORTS[1], env, APP)];
  const results: Record<string, unknown> = { app: path.relative(projectRoot, APP) || '.', date: new Date().toISOString() };
  try {
    if (ONLY === 'cost') {
      results.cursorCost = await cursorCost(client);
      log(JSON.stringify(results.cursorCost));
      return;
    }
    log(`app ${APP}: loss run (8 senders, 600 sends, 3 streams, 2 instances)`);
    results.loss = await lossRun(client);
    log(JSON.stringify(results.loss));
    if (ONLY !== 'loss') {
      results.latency = await latencyRun(client);
      log(JSON.stringify(results.latency));
      await Promise.all(servers.map(stopServer));
      servers.length = 0;
      results.cursorCost = await cursorCost(client);
      log(JSON.stringify(results.cursorCost));
    }
  } finally {
    await Promise.all(servers.map(stopServer));
    await client.end();
    await drop();
  }
  const out = path.join(projectRoot, 'bench', APP === projectRoot ? 'delivery.json' : 'delivery-before.json');
  fs.writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${path.relative(projectRoot, out)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
