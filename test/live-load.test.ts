/**
 * 1,000 concurrent streams on one instance all receive their events, and
 * the process's memory stays bounded. Size is fixed; timing is bench/'s job.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import t from 'tap';
import { hashToken, newToken } from '../src/auth/tokens';
import { buildTestApp, listen } from './helpers/app';
import { openStream, type SseClient } from './helpers/sse';

const STREAMS = 1000;

t.test(`${STREAMS} concurrent streams`, async (t) => {
  const { app, db } = await buildTestApp(t, { env: { DATABASE_POOL_SIZE: '10', MAX_CONNECTIONS_PER_ADDRESS: '0' } });
  const base = await listen(app);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  t.teardown(() => admin.end());

  // Users and sessions straight in SQL: hashing 1,000 passwords would only test argon2.
  const tokens = Array.from({ length: STREAMS }, () => newToken());
  const { rows: users } = await admin.query(
    `insert into app_public.users (username) select 'load_' || g from generate_series(1, $1::int) g returning id`,
    [STREAMS],
  );
  const { rows: [sender] } = await admin.query(`insert into app_public.users (username) values ('load_sender') returning id`);
  await admin.query(
    `insert into app_private.sessions (token_hash, user_id, expires_at)
     select h, u, now() + interval '1 hour' from unnest($1::bytea[], $2::bigint[]) as s(h, u)`,
    [tokens.map((tok) => hashToken(tok)), users.map((u) => u.id)],
  );

  const rssBefore = process.memoryUsage().rss;
  const streams: SseClient[] = [];
  for (let i = 0; i < STREAMS; i += 100) {
    streams.push(...(await Promise.all(tokens.slice(i, i + 100).map((tok) => openStream(`${base}/notifications/stream`, { authorization: `Bearer ${tok}` })))));
  }
  t.teardown(() => streams.forEach((s) => s.close()));
  t.ok(streams.every((s) => s.status === 200), 'every stream opened');
  t.equal(app.live.count(), STREAMS, 'the registry holds every stream');

  // One statement: a message to each of the 1,000 users (and 1,000 NOTIFYs on commit).
  const marker = crypto.randomBytes(4).toString('hex');
  await admin.query(
    `insert into app_public.messages (sender_id, receiver_id, content)
     select $1, u, 'load ' || $2 from unnest($3::bigint[]) u`,
    [sender.id, marker, users.map((u) => u.id)],
  );
  await Promise.all(streams.map((s) => s.waitFor(1, 60_000)));
  const received = streams.filter((s) => s.events.length === 1 && JSON.parse(s.events[0]!.data).preview === `load ${marker}`);
  t.equal(received.length, STREAMS, 'every stream received its own event, once');
  const perStreamKiB = (process.memoryUsage().rss - rssBefore) / STREAMS / 1024;
  t.ok(perStreamKiB < 256, `memory stays bounded: ${perStreamKiB.toFixed(1)} KiB of RSS per stream (server and client in one process)`);

  streams.forEach((s) => s.close());
  await Promise.all(streams.map((s) => s.closed));
  const deadline = Date.now() + 5000;
  while (app.live.count() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(app.live.count(), 0, 'closed streams leave the registry');
});
