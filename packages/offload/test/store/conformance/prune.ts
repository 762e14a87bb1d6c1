import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0 } from '../../helpers.js';
import { newTask, useStore, type MakeStore } from './harness.js';

export function describePrune(makeStore: MakeStore): void {
  describe('prune', () => {
    const { store, enqueue, enqueueOne, claim, mustGet } = useStore(makeStore);

    it('deletes only tasks that finished before `before`', async () => {
      const [succeeded, failed, canceled, late, running] = await enqueue(
        newTask(),
        newTask(),
        newTask(),
        newTask(),
        newTask(),
      );
      const queued = await enqueueOne({ name: 'sms', createdAt: T0 - 1_000_000 });
      const waiting = await enqueueOne({ runAt: T0 + 1_000_000 });
      const claimed = await claim({ limit: 10 });
      assert.equal(claimed.length, 5);
      const leaseOf = (id: string) => claimed.find((t) => t.id === id)!.lease;
      await store.settle([
        { id: succeeded!.id, lease: leaseOf(succeeded!.id), state: 'succeeded', at: T0 + 10 },
        { id: failed!.id, lease: leaseOf(failed!.id), state: 'failed', at: T0 + 20 },
        { id: late!.id, lease: leaseOf(late!.id), state: 'succeeded', at: T0 + 100 },
      ]);
      await store.cancel(canceled!.id, T0 + 30);

      assert.equal(await store.prune(T0 + 100, 100), 3);
      assert.equal(await store.get(succeeded!.id), null);
      assert.equal(await store.get(failed!.id), null);
      assert.equal(await store.get(canceled!.id), null);
      assert.equal((await mustGet(late!.id)).state, 'succeeded');
      assert.equal((await mustGet(running!.id)).state, 'running');
      assert.deepEqual(await mustGet(queued.id), queued);
      assert.deepEqual(await mustGet(waiting.id), waiting);
      assert.equal(await store.prune(T0 + 100, 100), 0);
      assert.equal(await store.prune(T0 + 101, 100), 1);
      assert.equal(await store.prune(T0 + 10_000_000, 100), 0);
    });

    it('deletes at most `limit` tasks per call', async () => {
      const tasks = await enqueue(...Array.from({ length: 5 }, () => newTask()));
      for (const task of tasks) await store.cancel(task.id, T0);
      assert.equal(await store.prune(T0 + 1, 2), 2);
      assert.equal(await store.prune(T0 + 1, 2), 2);
      assert.equal(await store.prune(T0 + 1, 2), 1);
      assert.equal(await store.prune(T0 + 1, 2), 0);
      assert.deepEqual((await store.list({ limit: 10 })).tasks, []);
    });
  });
}
