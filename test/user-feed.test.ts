/**
 * The user feed (src/events/user-feed.ts) with stand-in sinks: a client
 * that stops reading sits catch-ups out instead of holding up the same
 * user's other streams, and gets everything it missed, in order, once it
 * reads again.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import { StreamClient, UserFeed, type Sink } from '../src/events/user-feed';
import type { StreamEvent } from '../src/queries/notifications';

class FakeSink extends EventEmitter implements Sink {
  chunks: string[] = [];
  stalled = false;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return !this.stalled;
  }
  get writableLength(): number {
    return this.stalled ? this.chunks.join('').length : 0;
  }
  get writableNeedDrain(): boolean {
    return this.stalled;
  }
  /** The client reads again. */
  resume(): void {
    this.stalled = false;
    this.emit('drain');
  }
  seqs(): number[] {
    return this.chunks.map((c) => Number(/^id: s(\d+)/.exec(c)?.[1])).filter((n) => !Number.isNaN(n));
  }
}

const events = (n: number): StreamEvent[] => Array.from({ length: n }, (_, i) => ({ seq: i + 1, type: 'notification', data: `{"n":${i + 1}}` }));

t.test('a stalled client does not hold up the same user\'s healthy stream', async (t) => {
  const all = events(250);
  const fetch = async (after: number, limit: number) => all.filter((e) => e.seq > after).slice(0, limit);
  const feed = new UserFeed({ fetch, onError: (e) => t.fail(String(e)), batchSize: 100 });
  const stalled = new FakeSink();
  const healthy = new FakeSink();
  const slow = new StreamClient(stalled, 0, { maxBufferedBytes: 10_000_000, onDrop: () => t.fail('not dropped') });
  const fast = new StreamClient(healthy, 0, { maxBufferedBytes: 10_000_000, onDrop: () => t.fail('not dropped') });
  stalled.stalled = true;
  feed.add(slow);
  feed.add(fast);
  await new Promise((r) => setTimeout(r, 50));
  t.strictSame(healthy.seqs(), all.map((e) => e.seq), 'the healthy stream got all 250 events at once');
  t.ok(stalled.seqs().length <= 100, `the stalled one got at most the batch it was in when it stalled (${stalled.seqs().length})`);
  stalled.resume();
  await new Promise((r) => setTimeout(r, 50));
  t.strictSame(stalled.seqs(), all.map((e) => e.seq), 'once it reads again it gets the rest, in order, none twice');
  t.strictSame(healthy.seqs(), all.map((e) => e.seq), 'and the healthy one got nothing twice');
});

t.test('an event whose messages were all deleted moves the cursor without being sent', async (t) => {
  const list: StreamEvent[] = [
    { seq: 1, type: 'message.created', data: null },
    { seq: 2, type: 'message.created', data: '{"count":1,"messages":[]}' },
  ];
  const sink = new FakeSink();
  const client = new StreamClient(sink, 0, { maxBufferedBytes: 1_000_000, onDrop: () => {} });
  for (const e of list) client.deliver(e);
  t.strictSame(sink.seqs(), [2], 'only the event with data is sent');
  t.equal(client.cursor, 2, 'the cursor moved past both');
});
