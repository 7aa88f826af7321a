/**
 * The read router's rules (src/db/replicas.ts) on stand-in pools whose WAL
 * positions the test sets: floors, lag, outages. The same rules on a real
 * primary, replica and PgBouncer: test/topology.test.ts.
 */
import t from 'tap';
import type { DatabasePool } from 'slonik';
import { formatLsn, parseLsn, ReadRouter } from '../src/db/replicas';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pool answering the router's two queries from `state`; `ended` once end() was called. */
function fakeServer(state: { lsn: string; recovering?: boolean; down?: boolean; ended?: number }): DatabasePool {
  const answer = async () => {
    if (state.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  };
  return {
    // The position as of the moment it is asked, as a server answers.
    oneFirst: async () => {
      const lsn = state.lsn;
      await answer();
      return lsn;
    },
    one: async () => (await answer(), { recovering: state.recovering ?? true, lsn: state.lsn }),
    end: async () => {
      state.ended = (state.ended ?? 0) + 1;
    },
  } as unknown as DatabasePool;
}

/** A replica whose pools all answer from `state`; counts the pools opened. */
function fakeReplica(name: string, state: { lsn: string; recovering?: boolean; down?: boolean; ended?: number }) {
  const source = {
    name,
    opened: 0,
    connect: async () => {
      source.opened++;
      return fakeServer(state);
    },
  };
  return source;
}

function setup(maxLagMs = 60_000) {
  const primary = { lsn: '0/1000' };
  const replica: { lsn: string; recovering: boolean; down: boolean; ended?: number } = { lsn: '0/1000', recovering: true, down: false };
  const source = fakeReplica('r1', replica);
  const router = new ReadRouter({ primary: fakeServer(primary), replicas: [source], maxLagMs, checkMs: 60_000 });
  return { primary, replica, source, router };
}

t.test('WAL positions compare as 64-bit numbers', async (t) => {
  t.ok(parseLsn('0/FFFFFFFF') < parseLsn('1/0'), 'the high half counts');
  t.ok(parseLsn('0/A') > parseLsn('0/9'), 'hex');
  t.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848', 'round trip');
  t.throws(() => parseLsn('16-B3'), 'not a position');
});

t.test('a writer reads from the primary until the replica has replayed the write', async (t) => {
  const { primary, replica, router } = setup();
  await router.start();
  t.equal(router.replicaFor(1)?.name, 'r1', 'no writes: the replica');
  router.wrote([1, 2]);
  t.equal(router.replicaFor(1), null, 'just wrote: the primary, before any check');
  t.equal(router.replicaFor(2), null, 'so does the other participant');
  t.equal(router.replicaFor(3)?.name, 'r1', 'an uninvolved user still reads the replica');

  primary.lsn = '0/2000'; // the write's commit, seen by the next check
  await router.check();
  t.equal(router.replicaFor(1), null, 'replica at 0/1000 < the floor 0/2000: still the primary');
  replica.lsn = '0/1FFF';
  await router.check();
  t.equal(router.replicaFor(1), null, 'one byte short: still the primary');
  replica.lsn = '0/2000';
  await router.check();
  t.equal(router.replicaFor(1)?.name, 'r1', 'replayed: the replica again');
  t.equal(router.replicaFor(2)?.name, 'r1', 'for both');
  await router.stop();
});

t.test('after lost announcements (wroteAll) nobody reads a replica that has not replayed what the primary had', async (t) => {
  const { primary, replica, router } = setup();
  await router.start();
  t.equal(router.replicaFor(9)?.name, 'r1', 'before: user 9 reads the replica');
  primary.lsn = '0/3000'; // writes of other instances, announced while nobody listened
  router.wroteAll();
  t.equal(router.replicaFor(9), null, 'every user reads the primary at once');
  await router.check();
  t.equal(router.replicaFor(9), null, 'replica at 0/1000 < 0/3000: still the primary');
  t.equal(router.replicaFor(10), null, 'for any user');
  replica.lsn = '0/3000';
  await router.check();
  t.equal(router.replicaFor(9)?.name, 'r1', 'replayed: the replica again');
  await router.stop();
});

t.test('a write marked while a check runs gets its floor from the next check', async (t) => {
  const { primary, replica, router } = setup();
  await router.start();
  primary.lsn = '0/3000';
  const running = router.check(); // the primary answers 0/3000
  primary.lsn = '0/4000'; // then a write commits at 0/4000
  router.wrote([7]);
  replica.lsn = '0/3000';
  await running;
  t.equal(router.replicaFor(7), null, 'that check\'s answer predates the write: still the primary');
  await router.check();
  t.equal(router.replicaFor(7), null, 'the next check sets the floor 0/4000; the replica is at 0/3000');
  replica.lsn = '0/4000';
  await router.check();
  t.equal(router.replicaFor(7)?.name, 'r1', 'replayed: the replica');
  await router.stop();
});

t.test('a write marked before a check stays on the primary while that check is in flight', async (t) => {
  const { primary, router } = setup();
  await router.start();
  router.wrote([8]);
  primary.lsn = '0/5000';
  const running = router.check(); // has taken the mark, not yet the primary's answer
  t.equal(router.replicaFor(8), null, 'neither pending nor floored yet: still the primary');
  await running;
  t.equal(router.replicaFor(8), null, 'floored at 0/5000, replica at 0/1000: the primary');
  await router.stop();
});

t.test('lag: how long ago the primary was where the replica is', async (t) => {
  const { primary, replica, router } = setup(40);
  await router.start();
  t.equal(router.report()[0]?.status, 'ok', 'caught up');
  t.ok((router.report()[0]?.lagMs ?? 1) < 40, 'lag ~0');
  primary.lsn = '0/5000';
  await router.check();
  await sleep(60);
  await router.check();
  const lagging = router.report()[0]!;
  t.equal(lagging.status, 'lagging', `behind for ${lagging.lagMs} ms > 40 ms: lagging`);
  t.equal(router.replicaFor(99), null, 'a lagging replica takes no reads, not even for users who wrote nothing');
  replica.lsn = '0/5000';
  await router.check();
  t.equal(router.report()[0]?.status, 'ok', 'caught up: ok');
  t.equal(router.replicaFor(99)?.name, 'r1', 'and serves again');
  await router.stop();
});

t.test('a replica that fails, is promoted, or returns behind', async (t) => {
  const { primary, replica, source, router } = setup();
  await router.start();
  const chosen = router.replicaFor(1)!;
  router.failed(chosen, new Error('gone'));
  t.equal(router.report()[0]?.status, 'down', 'a failed read marks it down at once');
  t.equal(router.replicaFor(1), null, 'no reads there');
  await new Promise((r) => setImmediate(r));
  t.equal(replica.ended, 1, 'and its pool is ended (a pool that lost a backend mid-query is not reused)');
  router.failed(chosen, new Error('gone too')); // another read that was on the old pool
  t.equal(replica.ended, 1, 'a second failure on the old pool ends nothing more');
  await router.check();
  t.equal(router.report()[0]?.status, 'ok', 'the next check that reaches it brings it back');
  t.equal(source.opened, 2, 'on a new pool');
  t.not(router.replicaFor(1)?.pool, chosen.pool, 'which the reads use');

  replica.down = true;
  await router.check();
  t.match(router.report()[0], { status: 'down', lagMs: null }, 'unreachable: down');
  t.equal(replica.ended, 2, 'its pool ended');

  // While it was away the primary moved on and another replica-less check
  // dropped nothing; it comes back far behind.
  replica.down = false;
  primary.lsn = '0/9000';
  router.wrote([5]);
  await router.check();
  t.equal(router.replicaFor(5), null, 'behind the floor of a user who wrote');

  replica.recovering = false;
  replica.lsn = '0/9000';
  await router.check();
  t.equal(router.report()[0]?.status, 'down', 'promoted (not in recovery): not a replica any more');
  const opened = source.opened;
  await router.check();
  t.equal(source.opened, opened, 'reachable, so its pool is kept (no new pool per check)');
  await router.stop();
  t.equal(replica.ended, 3, 'stop ends the pool');
});

t.test('passed floors fold into one global floor that a returning replica must reach', async (t) => {
  const primary = { lsn: '0/1000' };
  const a = { lsn: '0/1000', recovering: true, down: false };
  const b = { lsn: '0/1000', recovering: true, down: false };
  const router = new ReadRouter({
    primary: fakeServer(primary),
    replicas: [
      fakeReplica('a', a),
      fakeReplica('b', b),
    ],
    maxLagMs: 60_000,
    checkMs: 60_000,
  });
  await router.start();
  b.down = true;
  router.wrote([1]);
  primary.lsn = '0/6000';
  a.lsn = '0/6000';
  await router.check(); // user 1's floor 0/6000, passed by a: dropped, global floor 0/6000
  t.equal(router.replicaFor(1)?.name, 'a', 'served by the replica that has it');
  b.down = false; // back, but still at 0/1000
  await router.check();
  for (let i = 0; i < 4; i++) t.equal(router.replicaFor(1)?.name, 'a', `never b, which is behind what was dropped (${i})`);
  b.lsn = '0/6000';
  await router.check();
  const names = new Set([0, 1, 2, 3].map(() => router.replicaFor(1)?.name));
  t.strictSame([...names].sort(), ['a', 'b'], 'caught up: both take reads in turn');
  await router.stop();
});

t.test('without replicas it does nothing', async (t) => {
  const router = new ReadRouter({ primary: fakeServer({ lsn: '0/1' }), replicas: [], maxLagMs: 1000, checkMs: 100 });
  await router.start();
  router.wrote([1]);
  t.equal(router.replicaFor(1), null, 'the primary');
  t.strictSame(router.report(), [], 'nothing to report');
  await router.stop();
});
