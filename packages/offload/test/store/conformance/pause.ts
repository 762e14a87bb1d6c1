import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0 } from '../../helpers.js';
import { lease, OTHER_OWNER, useStore, type MakeStore } from './harness.js';

export function describePause(makeStore: MakeStore): void {
  describe('pause and resume', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('claims no task of a paused name, from any owner, and the others go on', async () => {
      const email = await enqueueOne({ name: 'email' });
      const sms = await enqueueOne({ name: 'sms' });
      const grouped = await enqueueOne({
        name: 'email',
        group: { key: 'a', concurrency: 1, rate: null },
      });
      assert.equal(await store.pause('email', T0), true);
      const claimed = await claim({ names: ['email', 'sms'] });
      assert.deepEqual(
        claimed.map((t) => t.id),
        [sms.id],
      );
      assert.deepEqual(await claim({ names: ['email'], owner: OTHER_OWNER }), []);
      assert.equal((await mustGet(email.id)).state, 'queued');
      assert.equal(await store.resume('email'), true);
      assert.deepEqual(
        (await claim({ names: ['email'] })).map((t) => t.id).sort(),
        [email.id, grouped.id].sort(),
      );
    });

    it('lets a running task of a paused name finish', async () => {
      await enqueueOne();
      const running = await claimOne();
      await store.pause('email', T0);
      assert.equal(await settleOne({ ...lease(running), state: 'succeeded', at: T0 + 1 }), true);
      assert.equal((await mustGet(running.id)).state, 'succeeded');
    });

    it('lists the paused names with when they were paused, and says what changed', async () => {
      assert.deepEqual(await store.paused(), []);
      assert.equal(await store.pause('sms', T0 + 1), true);
      assert.equal(await store.pause('email', T0 + 2), true);
      assert.equal(await store.pause('email', T0 + 3), false, 'paused already');
      assert.deepEqual(await store.paused(), [
        { name: 'email', pausedAt: T0 + 2 },
        { name: 'sms', pausedAt: T0 + 1 },
      ]);
      assert.equal(await store.resume('sms'), true);
      assert.equal(await store.resume('sms'), false, 'not paused');
      assert.equal(await store.resume('never'), false);
      assert.deepEqual(await store.paused(), [{ name: 'email', pausedAt: T0 + 2 }]);
    });
  });
}
