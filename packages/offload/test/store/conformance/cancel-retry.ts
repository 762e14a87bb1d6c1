import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0 } from '../../helpers.js';
import { LEASE, taskError, useStore, type MakeStore } from './harness.js';

export function describeCancel(makeStore: MakeStore): void {
  describe('cancel', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('cancels a queued task, which then never runs', async () => {
      const task = await enqueueOne();
      const change = await store.cancel(task.id, T0 + 5);
      assert.ok(change);
      assert.equal(change.changed, true);
      assert.equal(change.task.state, 'canceled');
      assert.deepEqual(change.task.finishedAt, new Date(T0 + 5));
      assert.deepEqual(await mustGet(task.id), change.task);
      assert.deepEqual(await claim({ now: T0 + 10 }), []);
    });

    it('cancels a running task, whose later settlement and renewal are refused', async () => {
      const claimed = (await enqueueOne(), await claimOne());
      const change = await store.cancel(claimed.id, T0 + 5);
      assert.equal(change!.changed, true);
      assert.equal(change!.task.state, 'canceled');
      assert.equal(
        await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 6 }),
        false,
      );
      assert.deepEqual(await store.renew([{ id: claimed.id, lease: claimed.lease }], T0 + LEASE), [
        claimed.id,
      ]);
      assert.deepEqual(await store.rescue(T0 + 10 * LEASE), []);
      assert.deepEqual(await mustGet(claimed.id), change!.task);
    });

    it('leaves a finished task unchanged and answers null for an unknown id', async () => {
      const claimed = (await enqueueOne(), await claimOne());
      await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
      const finished = await mustGet(claimed.id);
      assert.deepEqual(await store.cancel(claimed.id, T0 + 2), {
        task: finished,
        changed: false,
      });
      assert.deepEqual(await mustGet(claimed.id), finished);
      assert.equal(await store.cancel('987654321', T0), null);
    });
  });
}

export function describeRetry(makeStore: MakeStore): void {
  describe('retry', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('queues a failed task now, granting one more attempt when none is left', async () => {
      const task = await enqueueOne({ maxAttempts: 1 });
      const claimed = await claimOne();
      await settleOne({
        id: task.id,
        lease: claimed.lease,
        state: 'failed',
        at: T0 + 1,
        error: taskError(1, T0 + 1),
      });
      const change = await store.retry(task.id, T0 + 50);
      assert.equal(change!.changed, true);
      assert.equal(change!.task.state, 'queued');
      assert.deepEqual(change!.task.runAt, new Date(T0 + 50));
      assert.equal(change!.task.finishedAt, null);
      assert.equal(change!.task.maxAttempts, 2);
      assert.equal(change!.task.attempts, 1);
      assert.equal(change!.task.errors.length, 1);
      assert.deepEqual(await mustGet(task.id), change!.task);
      assert.deepEqual(await claim({ now: T0 + 49 }), []);
      assert.equal((await claimOne({ now: T0 + 50 })).attempts, 2);
    });

    it('queues a canceled task, keeping maxAttempts when attempts are left', async () => {
      const task = await enqueueOne({ maxAttempts: 3 });
      await store.cancel(task.id, T0 + 1);
      const change = await store.retry(task.id, T0 + 2);
      assert.equal(change!.changed, true);
      assert.equal(change!.task.state, 'queued');
      assert.equal(change!.task.maxAttempts, 3);
      assert.equal((await claimOne({ now: T0 + 2 })).id, task.id);
    });

    it('leaves queued, running and succeeded tasks unchanged; null for an unknown id', async () => {
      const queued = await enqueueOne({ runAt: T0 + 1000 });
      assert.deepEqual(await store.retry(queued.id, T0), { task: queued, changed: false });
      const claimed = (await enqueueOne(), await claimOne());
      const running = await mustGet(claimed.id);
      assert.deepEqual(await store.retry(claimed.id, T0), { task: running, changed: false });
      await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
      const succeeded = await mustGet(claimed.id);
      assert.deepEqual(await store.retry(claimed.id, T0 + 2), {
        task: succeeded,
        changed: false,
      });
      assert.equal(await store.retry('987654321', T0), null);
    });
  });
}
