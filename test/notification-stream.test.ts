/**
 * NotificationStream against a fake sink: ordering, folding of pokes,
 * backpressure and dropping a client that stops reading.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { NotificationStream, type Sink } from '../src/events/notification-stream';
import type { Notification } from '../src/queries/notifications';

class FakeSink extends EventEmitter implements Sink {
  chunks: string[] = [];
  writableLength = 0;
  writableNeedDrain = false;
  constructor(private readonly highWaterMark = Infinity, private readonly reading = true) {
    super();
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    if (!this.reading) this.writableLength += chunk.length;
    this.writableNeedDrain = this.writableLength > this.highWaterMark;
    return !this.writableNeedDrain;
  }
  drain() {
    this.writableLength = 0;
    this.writableNeedDrain = false;
    this.emit('drain');
  }
  ids() {
    return this.chunks.filter((c) => c.startsWith('id: ')).map((c) => Number(/^id: (\d+)/.exec(c)![1]));
  }
}

const notification = (id: number): Notification => ({
  id, kind: 'message', messageId: id * 10, senderId: 1, preview: 'x'.repeat(100), createdAt: new Date(0).toISOString(), readAt: null,
});

/** A fake notifications table: fetch returns ids after `afterId`, up to `limit`. */
function table(upTo: () => number, calls: number[] = []) {
  return async (afterId: number, limit: number) => {
    calls.push(afterId);
    await new Promise((r) => setImmediate(r));
    const rows: Notification[] = [];
    for (let id = afterId + 1; id <= Math.min(upTo(), afterId + limit); id++) rows.push(notification(id));
    return rows;
  };
}

const settle = () => new Promise((r) => setTimeout(r, 150));

t.test('sends everything after lastId, in order, in batches, each once', async (t) => {
  const sink = new FakeSink();
  let max = 250;
  const calls: number[] = [];
  const stream = new NotificationStream({ sink, lastId: 0, fetch: table(() => max, calls), maxBufferedBytes: 1e9, onError: (e) => t.fail(String(e)), onDrop: () => t.fail('dropped'), batchSize: 100 });
  stream.poke();
  stream.poke();
  stream.poke();
  await settle();
  t.same(sink.ids(), Array.from({ length: 250 }, (_, i) => i + 1), 'ids 1..250 once each');
  t.same(calls, [0, 100, 200, 250], 'three pokes during one catch-up fold into one more pass');
  max = 252;
  stream.poke();
  await settle();
  t.same(sink.ids().slice(-2), [251, 252]);
  t.equal(stream.lastSentId, 252);
  t.match(sink.chunks[0], /^id: 1\nevent: notification\ndata: \{.*\}\n\n$/, 'SSE framing');
});

t.test('waits for drain before fetching the next batch', async (t) => {
  const sink = new FakeSink(500, false);
  const stream = new NotificationStream({ sink, lastId: 0, fetch: table(() => 300), maxBufferedBytes: 1e9, onError: (e) => t.fail(String(e)), onDrop: () => t.fail('dropped'), batchSize: 10 });
  stream.poke();
  await settle();
  t.equal(sink.ids().length, 10, 'one batch, then it waits');
  sink.drain();
  await settle();
  t.equal(sink.ids().length, 20, 'the next batch after drain');
});

t.test('a client that does not read is dropped, not buffered forever', async (t) => {
  const sink = new FakeSink(Infinity, false);
  const drops: string[] = [];
  const stream = new NotificationStream({ sink, lastId: 0, fetch: table(() => 10_000), maxBufferedBytes: 64 * 1024, onError: (e) => t.fail(String(e)), onDrop: (r) => drops.push(r), batchSize: 100 });
  stream.poke();
  await settle();
  t.same(drops, ['client is not reading'], 'dropped once');
  t.ok(sink.writableLength < 64 * 1024 + 1024, `buffer stayed bounded (${sink.writableLength} bytes)`);
  const before = sink.chunks.length;
  stream.poke();
  stream.heartbeat();
  await settle();
  t.equal(sink.chunks.length, before, 'nothing more is written once dropped');
});

t.test('a stream stuck waiting for drain is dropped after two heartbeats', async (t) => {
  const sink = new FakeSink(100, false);
  const drops: string[] = [];
  const stream = new NotificationStream({ sink, lastId: 0, fetch: table(() => 50), maxBufferedBytes: 1e9, onError: (e) => t.fail(String(e)), onDrop: (r) => drops.push(r), batchSize: 5 });
  stream.poke();
  await settle();
  stream.heartbeat();
  t.same(drops, [], 'one stalled beat is tolerated');
  stream.heartbeat();
  t.same(drops, ['client stopped reading']);
});

t.test('a failed fetch is reported and retried on the next poke', async (t) => {
  const sink = new FakeSink();
  let fail = true;
  const errors: unknown[] = [];
  const good = table(() => 3);
  const stream = new NotificationStream({
    sink, lastId: 0, maxBufferedBytes: 1e9, onDrop: () => t.fail('dropped'), onError: (e) => errors.push(e),
    fetch: async (a, l) => { if (fail) throw new Error('db down'); return good(a, l); },
  });
  stream.poke();
  await settle();
  t.equal(errors.length, 1);
  t.ok(stream.needsRetry, 'a failed catch-up asks the heartbeat for a retry');
  fail = false;
  stream.poke();
  await settle();
  t.same(sink.ids(), [1, 2, 3]);
  t.notOk(stream.needsRetry, 'and a successful one clears it');
});
