import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0 } from '../../helpers.js';
import { LEASE, lease, newTask, useStore, type MakeStore } from './harness.js';

export function describeStats(makeStore: MakeStore): void {
  describe('stats', () => {
    const { store, enqueue, claim, claimOne, settleOne } = useStore(makeStore);

    it('counts tasks per name and state and finds the oldest due task', async () => {
      await enqueue(
        newTask({ name: 'email', runAt: T0 - 50 }),
        newTask({ name: 'email', runAt: T0 - 20 }),
        newTask({ name: 'email', runAt: T0 + 500 }),
        newTask({ name: 'sms', runAt: T0 - 10, priority: 3 }),
        newTask({ name: 'push', runAt: T0 - 100 }),
      );
      const [claimed] = await claim({ names: ['push'] });
      await settleOne({ id: claimed!.id, lease: claimed!.lease, state: 'failed', at: T0 });
      const stats = await store.stats(T0);
      const counts = [...stats.counts].sort((x, y) =>
        `${x.name}/${x.state}`.localeCompare(`${y.name}/${y.state}`),
      );
      assert.deepEqual(counts, [
        { name: 'email', state: 'queued', count: 3 },
        { name: 'push', state: 'failed', count: 1 },
        { name: 'sms', state: 'queued', count: 1 },
      ]);
      assert.equal(stats.oldestDue, T0 - 50);
      assert.equal((await store.stats(T0 - 60)).oldestDue, null);
    });

    it('reports an empty store', async () => {
      assert.deepEqual(await store.stats(T0), { counts: [], oldestDue: null });
    });

    it('keeps the counts right through every change of state, and drops groups that empty', async () => {
      const counts = async () =>
        Object.fromEntries(
          (await store.stats(T0)).counts
            .map(({ name, state, count }) => [`${name} ${state}`, count] as const)
            .sort(([x], [y]) => x.localeCompare(y)),
        );
      const [a, b, c] = await enqueue(
        newTask({ key: 'a' }),
        newTask({ maxAttempts: 1 }),
        newTask(),
        newTask({ name: 'sms', runAt: T0 + 500 }),
      );
      await enqueue(newTask({ key: 'a' }));
      assert.deepEqual(await counts(), { 'email queued': 3, 'sms queued': 1 });

      const [first, second] = await claim({ limit: 2 });
      assert.deepEqual([first!.id, second!.id], [a!.id, b!.id]);
      assert.deepEqual(await counts(), {
        'email queued': 1,
        'email running': 2,
        'sms queued': 1,
      });
      assert.equal(
        await settleOne({ id: a!.id, lease: first!.lease + 1, state: 'succeeded', at: T0 }),
        false,
      );
      await settleOne({ ...lease(first!), state: 'queued', at: T0, runAt: T0 + 1000 });
      assert.deepEqual(await counts(), {
        'email queued': 2,
        'email running': 1,
        'sms queued': 1,
      });
      // b has no attempt left: the rescue fails it.
      await store.rescue(T0 + LEASE + 1);
      assert.deepEqual(await counts(), {
        'email failed': 1,
        'email queued': 2,
        'sms queued': 1,
      });

      const third = await claimOne();
      assert.equal(third.id, c!.id);
      await settleOne({ ...lease(third), state: 'succeeded', at: T0 });
      const [sms] = (await store.list({ name: 'sms', limit: 1 })).tasks;
      await store.cancel(sms!.id, T0);
      assert.deepEqual(await counts(), {
        'email failed': 1,
        'email queued': 1,
        'email succeeded': 1,
        'sms canceled': 1,
      });
      await store.retry(b!.id, T0);
      await store.retry(b!.id, T0);
      await store.cancel(a!.id, T0);
      assert.deepEqual(await counts(), {
        'email canceled': 1,
        'email queued': 1,
        'email succeeded': 1,
        'sms canceled': 1,
      });

      assert.equal(await store.prune(T0 + 1, 100), 3);
      assert.deepEqual(await counts(), { 'email queued': 1 });
    });
  });
}
