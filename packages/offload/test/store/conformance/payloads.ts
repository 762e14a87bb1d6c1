import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Json } from '../../../src/types.js';
import { T0 } from '../../helpers.js';
import { taskError, useStore, type MakeStore } from './harness.js';

export function describePayloads(makeStore: MakeStore): void {
  describe('payloads and snapshots', () => {
    const { store, enqueueOne, claimOne, settleOne, mustGet } = useStore(makeStore);

    const payload: Json = {
      text: 'héllo wörld ✓ 日本語 🚀 \u0000 "quoted" \\ back\nline',
      nested: { deep: [1, 2.5, -3e-7, { empty: {}, list: [] }], flag: true, nothing: null },
      big: 9007199254740991,
      empty: '',
    };

    it('hands payloads back deep-equal from enqueue, get, list and claim', async () => {
      const task = await enqueueOne({ data: payload });
      assert.deepEqual(task.payload, payload);
      assert.deepEqual((await mustGet(task.id)).payload, payload);
      assert.deepEqual((await store.list({ limit: 1 })).tasks[0]!.payload, payload);
      assert.deepEqual((await claimOne()).payload, payload);
      for (const scalar of [null, 0, 'text', false, [1, [2, [3]]]] as Json[]) {
        const stored = await enqueueOne({ data: scalar });
        assert.deepEqual((await mustGet(stored.id)).payload, scalar);
      }
    });

    it('returns snapshots: changing a returned task or a settled error changes nothing stored', async () => {
      const task = await enqueueOne({ data: payload });
      const claimed = await claimOne();
      const error = taskError(1, T0 + 1);
      await settleOne({
        id: task.id,
        lease: claimed.lease,
        state: 'queued',
        at: T0 + 1,
        runAt: T0 + 2,
        error,
      });
      const before = await mustGet(task.id);
      const expected = structuredClone(before);

      error.message = 'changed';
      error.at.setTime(0);
      for (const returned of [task, claimed, before, (await store.list({ limit: 1 })).tasks[0]!]) {
        (returned.payload as { [key: string]: Json }).text = 'changed';
        returned.runAt.setTime(0);
        returned.createdAt.setTime(0);
        returned.errors.push(taskError(99, 0));
        returned.errors[0]?.at.setTime(0);
        returned.state = 'succeeded';
      }
      assert.deepEqual(await mustGet(task.id), expected);
    });
  });
}
