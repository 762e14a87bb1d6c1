import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimedTask } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { LEASE, newTask, useStore, type MakeStore } from './harness.js';

export function describeRenew(makeStore: MakeStore): void {
  describe('renew', () => {
    const { store, enqueue, claim, settleOne, mustGet } = useStore(makeStore);

    it('extends the leases still held and returns the ids of the lost ones', async () => {
      await enqueue(newTask(), newTask(), newTask(), newTask());
      const [held, stale, canceled, finished] = (await claim()) as ClaimedTask[] as [
        ClaimedTask,
        ClaimedTask,
        ClaimedTask,
        ClaimedTask,
      ];
      await store.cancel(canceled.id, T0 + 1);
      await settleOne({ id: finished.id, lease: finished.lease, state: 'succeeded', at: T0 + 1 });
      const lost = await store.renew(
        [
          { id: held.id, lease: held.lease },
          { id: stale.id, lease: stale.lease + 1 },
          { id: canceled.id, lease: canceled.lease },
          { id: finished.id, lease: finished.lease },
          { id: '987654321', lease: 1 },
        ],
        T0 + 10 * LEASE,
      );
      assert.deepEqual(lost.sort(), [stale.id, canceled.id, finished.id, '987654321'].sort());
      // The renewed lease outlives the original expiry; the stale one does not.
      const rescued = await store.rescue(T0 + 2 * LEASE);
      assert.deepEqual(
        rescued.map((r) => r.task.id),
        [stale.id],
      );
      assert.equal((await mustGet(held.id)).state, 'running');
      assert.equal(
        await settleOne({
          id: held.id,
          lease: held.lease,
          state: 'succeeded',
          at: T0 + 2 * LEASE,
        }),
        true,
      );
    });

    it('returns nothing for nothing', async () => {
      assert.deepEqual(await store.renew([], T0), []);
    });
  });
}
