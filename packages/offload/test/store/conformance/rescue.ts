import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimedTask } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { newTask, OWNER, useStore, type MakeStore } from './harness.js';

export function describeRescue(makeStore: MakeStore): void {
  describe('rescue', () => {
    const { store, enqueue, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('requeues a running task whose lease expired before now, recording the interruption', async () => {
      const task = await enqueueOne({ maxAttempts: 3 });
      const claimed = await claimOne({ leaseExpiresAt: T0 + 100 });
      assert.deepEqual(await store.rescue(T0 + 100), [], 'a lease expiring at now is still held');
      const rescued = await store.rescue(T0 + 101);
      assert.equal(rescued.length, 1);
      const { task: back, owner } = rescued[0]!;
      assert.equal(owner, OWNER);
      assert.equal(back.id, task.id);
      assert.equal(back.state, 'queued');
      assert.equal(back.attempts, 1);
      assert.deepEqual(back.runAt, new Date(T0 + 101));
      assert.equal(back.finishedAt, null);
      assert.equal(back.errors.length, 1);
      const [error] = back.errors;
      assert.equal(error!.name, 'TaskInterruptedError');
      assert.equal(error!.attempt, 1);
      assert.deepEqual(error!.at, new Date(T0 + 101));
      assert.match(error!.message, new RegExp(OWNER));
      assert.deepEqual(await mustGet(task.id), back);

      const again = await claimOne({ now: T0 + 101 });
      assert.equal(again.attempts, 2);
      assert.ok(again.lease > claimed.lease);
      assert.equal(
        await settleOne({ id: task.id, lease: claimed.lease, state: 'succeeded', at: T0 + 102 }),
        false,
      );
    });

    it('fails a rescued task that has no attempt left', async () => {
      const task = await enqueueOne({ maxAttempts: 1 });
      await claimOne({ leaseExpiresAt: T0 + 100 });
      const [rescued] = await store.rescue(T0 + 200);
      assert.equal(rescued!.task.state, 'failed');
      assert.equal(rescued!.task.attempts, 1);
      assert.deepEqual(rescued!.task.finishedAt, new Date(T0 + 200));
      assert.equal(rescued!.task.errors[0]!.name, 'TaskInterruptedError');
      assert.deepEqual(await mustGet(task.id), rescued!.task);
      assert.deepEqual(await claim({ now: T0 + 300 }), []);
    });

    it('leaves a task with a live lease alone, and queued or finished tasks too', async () => {
      await enqueue(newTask(), newTask(), newTask(), newTask({ runAt: T0 - 1_000_000 }));
      const [live, done] = (await claim({ limit: 2, leaseExpiresAt: T0 + 10_000 })) as [
        ClaimedTask,
        ClaimedTask,
      ];
      await settleOne({ id: done.id, lease: done.lease, state: 'succeeded', at: T0 + 1 });
      const before = (await store.list({ limit: 10 })).tasks;
      assert.deepEqual(await store.rescue(T0 + 5_000), []);
      assert.deepEqual((await store.list({ limit: 10 })).tasks, before);
      assert.equal((await mustGet(live.id)).state, 'running');
    });
  });
}
