import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store } from '../../../src/store/store.js';
import type { TaskGroup } from '../../../src/types.js';
import { T0 } from '../../helpers.js';
import { lease, LEASE, newTask, OTHER_OWNER, OWNER, useStore, type MakeStore } from './harness.js';

const limited = (key: string, concurrency: number): TaskGroup => ({ key, concurrency, rate: null });
const rated = (key: string, max: number, period: number): TaskGroup => ({
  key,
  concurrency: null,
  rate: { max, period },
});

export function describeGroups(makeStore: MakeStore): void {
  describe('groups: concurrency', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('stores the group with the task and hands it back', async () => {
      const group: TaskGroup = { key: 'tenant:42', concurrency: 3, rate: { max: 5, period: 1000 } };
      const task = await enqueueOne({ group, runAt: T0 - 5 });
      assert.deepEqual(task.group, group);
      const stats = await store.stats(T0);
      assert.deepEqual(stats.counts, [{ name: 'email', state: 'queued', count: 1 }]);
      assert.equal(stats.oldestDue, T0 - 5);
      assert.deepEqual(
        (await store.list({ state: 'queued', limit: 10 })).tasks.map((t) => t.id),
        [task.id],
      );
      assert.deepEqual((await mustGet(task.id)).group, group);
      assert.deepEqual((await claimOne()).group, group);
      assert.equal((await enqueueOne()).group, null);
    });

    it('runs no more tasks of a key at once than its concurrency, whoever claims', async () => {
      for (let i = 0; i < 5; i++) await enqueueOne({ group: limited('a', 2) });
      assert.equal((await claim({ limit: 10 })).length, 2);
      assert.deepEqual(await claim({ limit: 10, owner: OTHER_OWNER }), []);
      assert.deepEqual(await claim({ limit: 10, now: T0 + 1000 }), []);
    });

    it('fills the batch with other keys and tasks without a group past a blocked key', async () => {
      // The blocked key's tasks come first in claim order, and there are many of them.
      for (let i = 0; i < 20; i++) await enqueueOne({ group: limited('a', 1), runAt: T0 - 100 });
      for (let i = 0; i < 3; i++) await enqueueOne({ group: limited('b', 2), runAt: T0 - 50 });
      const free = [await enqueueOne(), await enqueueOne(), await enqueueOne()];
      const claimed = await claim({ limit: 8 });
      const keys = claimed.map((task) => task.group?.key ?? null);
      assert.equal(keys.filter((key) => key === 'a').length, 1);
      assert.equal(keys.filter((key) => key === 'b').length, 2);
      assert.deepEqual(
        claimed
          .filter((task) => task.group === null)
          .map((task) => task.id)
          .sort(),
        free.map((task) => task.id).sort(),
      );
      assert.deepEqual(await claim({ limit: 8 }), [], 'every key is at its limit');
    });

    it('reaches a newer key past a blocked key with many more tasks than the batch', async () => {
      for (let i = 0; i < 60; i++) await enqueueOne({ group: limited('a', 1), runAt: T0 - 1000 });
      assert.equal((await claim({ limit: 1 })).length, 1);
      const newer = await enqueueOne({ group: limited('z', 1), runAt: T0 });
      assert.deepEqual(
        (await claim({ limit: 2 })).map((t) => t.id),
        [newer.id],
      );
    });

    it("takes a key's own tasks in claim order", async () => {
      const late = await enqueueOne({ group: limited('a', 1), runAt: T0 - 10 });
      const high = await enqueueOne({ group: limited('a', 1), priority: 5, runAt: T0 });
      const early = await enqueueOne({ group: limited('a', 1), runAt: T0 - 20 });
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const task = await claimOne({ now: T0 + i });
        order.push(task.id);
        await settleOne({ ...lease(task), state: 'succeeded', at: T0 + i });
      }
      assert.deepEqual(order, [high.id, early.id, late.id]);
    });

    it('frees a slot when a task succeeds, fails, is requeued, rescued or canceled', async () => {
      for (let i = 0; i < 6; i++) await enqueueOne({ group: limited('a', 1), maxAttempts: 1 });
      // Each claim finds the key at its limit until the running task leaves `running`.
      const next = async (now: number) => {
        const task = await claimOne({ now });
        assert.deepEqual(await claim({ now }), [], 'the key is at its limit');
        return task;
      };
      let running = await next(T0);
      await settleOne({ ...lease(running), state: 'succeeded', at: T0 });
      running = await next(T0);
      await settleOne({ ...lease(running), state: 'failed', at: T0 });
      running = await next(T0);
      await settleOne({ ...lease(running), state: 'queued', at: T0, runAt: T0 + 10_000 });
      running = await next(T0);
      await store.cancel(running.id, T0);
      running = await next(T0);
      await store.renew([lease(running)], T0 + 100);
      assert.equal((await store.rescue(T0 + 101)).length, 1);
      running = await next(T0 + 101);
      assert.equal(running.group?.key, 'a');
    });

    it('counts a retried task as queued again, and a canceled queued one as gone', async () => {
      const first = await enqueueOne({ group: limited('a', 1) });
      const second = await enqueueOne({ group: limited('a', 1) });
      await store.cancel(second.id, T0);
      const claimed = await claimOne();
      assert.equal(claimed.id, first.id);
      await settleOne({ ...lease(claimed), state: 'failed', at: T0 });
      assert.equal((await store.retry(second.id, T0))?.changed, true);
      assert.equal((await claimOne()).id, second.id);
      assert.equal((await store.retry(first.id, T0))?.changed, true);
      assert.deepEqual(await claim(), [], 'the retried task waits for the slot');
    });

    it('takes a task with a group only once it is due, as any task', async () => {
      const later = await enqueueOne({ group: limited('a', 5), runAt: T0 + 1000 });
      const due = await enqueueOne({ group: limited('b', 5), runAt: T0 });
      assert.deepEqual(
        (await claim({ now: T0 })).map((t) => t.id),
        [due.id],
      );
      assert.deepEqual(await claim({ now: T0 + 999 }), []);
      assert.deepEqual(
        (await claim({ now: T0 + 1000 })).map((t) => t.id),
        [later.id],
      );
      const stats = await store.stats(T0 + 1000);
      assert.equal(stats.oldestDue, null);
    });

    it('applies no limit to a key given without one', async () => {
      for (let i = 0; i < 4; i++)
        await enqueueOne({ group: { key: 'open', concurrency: null, rate: null } });
      assert.equal((await claim({ limit: 10 })).length, 4);
    });

    it('keeps keys apart: one at its limit does not count for another', async () => {
      for (const key of ['x', 'y', 'z']) {
        for (let i = 0; i < 3; i++) await enqueueOne({ group: limited(key, 2) });
      }
      const claimed = await claim({ limit: 4 });
      const more = await claim({ limit: 10 });
      const perKey = new Map<string, number>();
      for (const task of [...claimed, ...more])
        perKey.set(task.group!.key, (perKey.get(task.group!.key) ?? 0) + 1);
      assert.deepEqual(Object.fromEntries(perKey), { x: 2, y: 2, z: 2 });
    });
  });

  describe('groups: across processes', () => {
    it('claims, past keys it found blocked, what another process freed or added meanwhile', async () => {
      const { store: first, cleanup, connect } = await makeStore();
      const second: Store = connect?.() ?? first;
      const claim = (names = ['email']) =>
        first.claim({ owner: OWNER, names, limit: 10, now: T0, leaseExpiresAt: T0 + LEASE });
      try {
        await first.open();
        if (second !== first) await second.open();
        await first.registerWorker(OWNER);
        const enqueue = async (group: TaskGroup) =>
          (await second.enqueue([newTask({ group })]))[0]!.task;
        const [a1, a2] = [await enqueue(limited('a', 1)), await enqueue(limited('a', 1))];
        const [running] = await claim();
        assert.equal(running?.id, a1.id);
        assert.deepEqual(await claim(), [], 'the key is at its concurrency');
        assert.deepEqual(await claim(), [], 'and still is');

        const b = await enqueue(limited('b', 1));
        assert.deepEqual(
          (await claim()).map((t) => t.id),
          [b.id],
          'a task added elsewhere',
        );

        const settled = await second.settle([
          { id: a1.id, lease: running!.lease, state: 'succeeded', at: T0 },
        ]);
        assert.deepEqual(settled, [true]);
        assert.deepEqual(
          (await claim()).map((t) => t.id),
          [a2.id],
          'a slot freed elsewhere',
        );
      } finally {
        if (second !== first) await second.close();
        await first.close();
        await cleanup();
      }
    });
  });

  describe('groups: rate and throttle', () => {
    const { store, enqueueOne, claim, mustGet } = useStore(makeStore);

    it('starts at most max tasks of a key per period, spaced evenly after the first burst', async () => {
      const tasks = [];
      for (let i = 0; i < 8; i++) tasks.push(await enqueueOne({ group: rated('r', 2, 1000) }));
      assert.equal((await claim({ now: T0 })).length, 2);
      assert.deepEqual(await claim({ now: T0, owner: OTHER_OWNER }), []);
      assert.deepEqual(await claim({ now: T0 + 499 }), []);
      assert.equal((await claim({ now: T0 + 500 })).length, 1);
      assert.equal((await claim({ now: T0 + 1000 })).length, 1);
      // After a quiet period the burst is max again, never more.
      assert.equal((await claim({ now: T0 + 60_000 })).length, 2);
      const waiting = await mustGet(tasks[7]!.id);
      assert.equal(waiting.state, 'queued');
      assert.equal(waiting.attempts, 0, 'a task held back by the rate uses no attempt');
    });

    it('claims no task of a throttled key until the throttle ends, and other keys go on', async () => {
      const throttled = await enqueueOne({ group: limited('slow', 5) });
      const other = await enqueueOne({ group: limited('fast', 5) });
      const free = await enqueueOne();
      await store.throttle('slow', T0 + 5000);
      await store.throttle('slow', T0 + 1000); // an earlier end does not shorten it
      assert.deepEqual(
        (await claim({ now: T0 })).map((t) => t.id).sort(),
        [other.id, free.id].sort(),
      );
      assert.deepEqual(await claim({ now: T0 + 4999 }), []);
      assert.deepEqual(
        (await claim({ now: T0 + 5000 })).map((t) => t.id),
        [throttled.id],
      );
    });

    it('throttles a key that has no task yet', async () => {
      await store.throttle('later', T0 + 100);
      const task = await enqueueOne({ group: { key: 'later', concurrency: null, rate: null } });
      assert.deepEqual(await claim({ now: T0 + 99 }), []);
      assert.equal((await claim({ now: T0 + 100 }))[0]?.id, task.id);
    });
  });
}
