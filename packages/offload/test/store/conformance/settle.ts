import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_ERRORS_KEPT, type ClaimedTask } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import {
  LEASE,
  lease,
  newTask,
  OTHER_OWNER,
  taskError,
  useStore,
  type MakeStore,
} from './harness.js';

export function describeSettle(makeStore: MakeStore): void {
  describe('settle', () => {
    const { store, enqueue, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('succeeded sets finishedAt and keeps the attempt', async () => {
      const { id, lease } = (await enqueueOne(), await claimOne());
      assert.equal(await settleOne({ id, lease, state: 'succeeded', at: T0 + 50 }), true);
      const task = await mustGet(id);
      assert.equal(task.state, 'succeeded');
      assert.deepEqual(task.finishedAt, new Date(T0 + 50));
      assert.equal(task.attempts, 1);
      assert.deepEqual(task.errors, []);
      assert.deepEqual(await claim({ now: T0 + 100 }), []);
    });

    it('succeeded keeps the result, handed back by get and list; other outcomes keep none', async () => {
      const result = { provider: 'smtp-2', ids: [1, 2], nested: { ok: true, none: null } };
      const [a, b] = await enqueue(newTask(), newTask());
      const [first, second] = await claim();
      assert.equal(
        await settleOne({
          ...lease(first!),
          state: 'succeeded',
          at: T0 + 5,
          result: JSON.stringify(result),
        }),
        true,
      );
      assert.equal(await settleOne({ ...lease(second!), state: 'succeeded', at: T0 + 5 }), true);
      assert.deepEqual((await mustGet(a!.id)).result, result);
      assert.equal((await mustGet(b!.id)).result, null);
      const listed = (await store.list({ limit: 10 })).tasks;
      assert.deepEqual(listed.find((t) => t.id === a!.id)!.result, result);

      const c = await enqueueOne();
      const claimed = await claimOne();
      const error = taskError(1, T0 + 9);
      await settleOne({ ...lease(claimed), state: 'queued', at: T0 + 9, runAt: T0 + 10, error });
      assert.equal((await mustGet(c.id)).result, null);
      assert.equal((await claimOne({ now: T0 + 10 })).result, null);
    });

    it('failed sets finishedAt and records the error', async () => {
      const { id, lease } = (await enqueueOne(), await claimOne());
      const error = taskError(1, T0 + 20, 'boom');
      assert.equal(await settleOne({ id, lease, state: 'failed', at: T0 + 20, error }), true);
      const task = await mustGet(id);
      assert.equal(task.state, 'failed');
      assert.deepEqual(task.finishedAt, new Date(T0 + 20));
      assert.deepEqual(task.errors, [error]);
    });

    it('queued with runAt requeues the task, claimable only once it is due', async () => {
      const { id, lease } = (await enqueueOne(), await claimOne());
      const error = taskError(1, T0 + 10);
      assert.equal(
        await settleOne({ id, lease, state: 'queued', at: T0 + 10, runAt: T0 + 1000, error }),
        true,
      );
      const task = await mustGet(id);
      assert.equal(task.state, 'queued');
      assert.deepEqual(task.runAt, new Date(T0 + 1000));
      assert.equal(task.finishedAt, null);
      assert.equal(task.attempts, 1);
      assert.deepEqual(task.errors, [error]);
      assert.deepEqual(await claim({ now: T0 + 999 }), []);
      const again = await claimOne({ now: T0 + 1000 });
      assert.equal(again.id, id);
      assert.equal(again.attempts, 2);
    });

    it('queued without runAt runs again at `at`', async () => {
      const { id, lease } = (await enqueueOne(), await claimOne());
      await settleOne({ id, lease, state: 'queued', at: T0 + 7 });
      assert.deepEqual((await mustGet(id)).runAt, new Date(T0 + 7));
      assert.deepEqual(await claim({ now: T0 + 6 }), []);
      assert.equal((await claimOne({ now: T0 + 7 })).id, id);
    });

    it(`keeps the last ${MAX_ERRORS_KEPT} errors, dropping the oldest`, async () => {
      const task = await enqueueOne({ maxAttempts: 100 });
      const total = MAX_ERRORS_KEPT + 3;
      for (let attempt = 1; attempt <= total; attempt++) {
        const now = T0 + attempt;
        const claimed = await claimOne({ now });
        assert.equal(claimed.attempts, attempt);
        await settleOne({
          id: task.id,
          lease: claimed.lease,
          state: 'queued',
          at: now,
          runAt: now + 1,
          error: taskError(attempt, now),
        });
      }
      const { errors } = await mustGet(task.id);
      assert.equal(errors.length, MAX_ERRORS_KEPT);
      assert.deepEqual(
        errors.map((e) => e.attempt),
        Array.from({ length: MAX_ERRORS_KEPT }, (_, i) => total - MAX_ERRORS_KEPT + 1 + i),
      );
      assert.deepEqual(errors.at(-1), taskError(total, T0 + total));
    });

    it('refund gives the attempt back', async () => {
      const { id, lease } = (await enqueueOne(), await claimOne());
      assert.equal(
        await settleOne({ id, lease, state: 'queued', at: T0 + 1, runAt: T0 + 1, refund: true }),
        true,
      );
      const task = await mustGet(id);
      assert.equal(task.attempts, 0);
      assert.equal(task.state, 'queued');
      assert.equal((await claimOne({ now: T0 + 1 })).attempts, 1);
    });

    it('settles a batch, answering per settlement', async () => {
      await enqueue(newTask(), newTask(), newTask());
      const [a, b, c] = (await claim()) as [ClaimedTask, ClaimedTask, ClaimedTask];
      const results = await store.settle([
        { id: a.id, lease: a.lease, state: 'succeeded', at: T0 + 1 },
        { id: b.id, lease: b.lease + 1, state: 'succeeded', at: T0 + 1 },
        { id: c.id, lease: c.lease, state: 'failed', at: T0 + 1, error: taskError(1, T0 + 1) },
        { id: a.id, lease: a.lease, state: 'failed', at: T0 + 2 },
      ]);
      assert.deepEqual(results, [true, false, true, false]);
      assert.equal((await mustGet(a.id)).state, 'succeeded');
      assert.equal((await mustGet(b.id)).state, 'running');
      assert.equal((await mustGet(c.id)).state, 'failed');
    });

    it('ignores a settlement with an old lease token and changes nothing (fencing)', async () => {
      const { id, lease: oldLease } = (await enqueueOne(), await claimOne());
      const [rescued] = await store.rescue(T0 + LEASE + 1);
      assert.equal(rescued!.task.id, id);
      const current = await claimOne({ now: T0 + LEASE + 1, owner: OTHER_OWNER });
      const before = await mustGet(id);
      assert.equal(
        await settleOne({
          id,
          lease: oldLease,
          state: 'failed',
          at: T0 + LEASE + 2,
          error: taskError(1, T0),
        }),
        false,
      );
      assert.deepEqual(await mustGet(id), before);
      assert.equal(
        await settleOne({ id, lease: current.lease, state: 'succeeded', at: T0 + LEASE + 3 }),
        true,
      );
    });

    it('ignores a settlement of a task that is not running, or unknown', async () => {
      const task = await enqueueOne();
      assert.equal(await settleOne({ id: task.id, lease: 1, state: 'succeeded', at: T0 }), false);
      assert.equal(await settleOne({ id: task.id, lease: 0, state: 'succeeded', at: T0 }), false);
      assert.deepEqual(await mustGet(task.id), task);
      const claimed = await claimOne();
      await settleOne({ id: task.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
      const finished = await mustGet(task.id);
      assert.equal(
        await settleOne({ id: task.id, lease: claimed.lease, state: 'failed', at: T0 + 2 }),
        false,
      );
      assert.deepEqual(await mustGet(task.id), finished);
      assert.equal(
        await settleOne({ id: '987654321', lease: 1, state: 'succeeded', at: T0 }),
        false,
      );
    });
  });
}
