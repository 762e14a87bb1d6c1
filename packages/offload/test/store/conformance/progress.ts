import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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

const json = (value: unknown) => JSON.stringify(value);

export function describeProgress(makeStore: MakeStore): void {
  describe('progress', () => {
    const { store, enqueue, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('is null until reported, then shows on get and list', async () => {
      const { id } = await enqueueOne();
      assert.equal((await mustGet(id)).progress, null);
      const claimed = await claimOne();
      const progress = { done: 3, total: 10, step: 'resize', nested: { ok: true, none: null } };
      assert.deepEqual(await store.progress([{ ...lease(claimed), progress: json(progress) }]), []);
      assert.deepEqual((await mustGet(id)).progress, progress);
      const listed = (await store.list({ limit: 10 })).tasks.find((t) => t.id === id);
      assert.deepEqual(listed!.progress, progress);
      const running = (await store.list({ state: 'running', limit: 10 })).tasks;
      assert.deepEqual(running[0]!.progress, progress);
    });

    it('writes several tasks in one call; a task given twice takes the last', async () => {
      await enqueue(newTask(), newTask());
      const [a, b] = await claim();
      const lost = await store.progress([
        { ...lease(a!), progress: json(1) },
        { ...lease(b!), progress: json('half') },
        { ...lease(a!), progress: json(2) },
      ]);
      assert.deepEqual(lost, []);
      assert.equal((await mustGet(a!.id)).progress, 2);
      assert.equal((await mustGet(b!.id)).progress, 'half');
    });

    it('is fenced by the lease: a stale, finished or unknown task is not written, and is returned', async () => {
      await enqueue(newTask(), newTask(), newTask());
      const [held, finished, canceled] = await claim();
      await settleOne({ ...lease(finished!), state: 'succeeded', at: T0 + 1 });
      await store.cancel(canceled!.id, T0 + 1);
      const lost = await store.progress([
        { id: held!.id, lease: held!.lease + 1, progress: json('stale') },
        { ...lease(finished!), progress: json('late') },
        { ...lease(canceled!), progress: json('late') },
        { id: '987654321', lease: 1, progress: json('nobody') },
      ]);
      assert.deepEqual(lost.sort(), [held!.id, finished!.id, canceled!.id, '987654321'].sort());
      for (const task of [held!, finished!, canceled!]) {
        assert.equal((await mustGet(task.id)).progress, null);
      }
    });

    it('of a run whose lease was taken over is not written over the new run', async () => {
      const { id } = await enqueueOne();
      const first = await claimOne();
      await store.rescue(T0 + LEASE + 1);
      const second = await claimOne({ now: T0 + LEASE + 2, owner: OTHER_OWNER });
      assert.deepEqual(await store.progress([{ ...lease(second), progress: json('new') }]), []);
      assert.deepEqual(await store.progress([{ ...lease(first), progress: json('old') }]), [id]);
      assert.equal((await mustGet(id)).progress, 'new');
    });

    it('survives the settle, and is kept into the next attempt; a settlement may carry the latest', async () => {
      const [kept, carried] = await enqueue(newTask(), newTask());
      const [a, b] = await claim();
      await store.progress([
        { ...lease(a!), progress: json({ done: 5 }) },
        { ...lease(b!), progress: json({ done: 1 }) },
      ]);
      await settleOne({ ...lease(a!), state: 'succeeded', at: T0 + 5, result: json('ok') });
      const error = taskError(1, T0 + 5);
      await settleOne({
        ...lease(b!),
        state: 'queued',
        at: T0 + 5,
        runAt: T0 + 6,
        error,
        progress: json({ done: 2 }),
      });
      const done = await mustGet(kept!.id);
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(done.progress, { done: 5 });
      assert.deepEqual((await mustGet(carried!.id)).progress, { done: 2 });

      // The claim does not read it back; the stored value stays until the new attempt reports.
      const again = await claimOne({ now: T0 + 6 });
      assert.equal(again.progress, null);
      assert.deepEqual((await mustGet(carried!.id)).progress, { done: 2 });
      await settleOne({ ...lease(again), state: 'succeeded', at: T0 + 7, progress: json('all') });
      assert.equal((await mustGet(carried!.id)).progress, 'all');
    });

    it('returns nothing for nothing', async () => {
      assert.deepEqual(await store.progress([]), []);
    });
  });
}
