import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { T0 } from '../../helpers.js';
import { OTHER_OWNER, useStore, type MakeStore } from './harness.js';

export function describeClaim(makeStore: MakeStore): void {
  describe('claim', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

    it('takes the highest priority first, then the earliest runAt, then the oldest', async () => {
      const low = await enqueueOne({ priority: 0, runAt: T0 - 100 });
      const highLate = await enqueueOne({ priority: 10, runAt: T0 - 10 });
      const highEarly = await enqueueOne({ priority: 10, runAt: T0 - 20 });
      const mid = await enqueueOne({ priority: 5, runAt: T0 });
      const highLateSecond = await enqueueOne({ priority: 10, runAt: T0 - 10 });
      const negative = await enqueueOne({ priority: -1, runAt: T0 - 1000 });
      const expected = [highEarly, highLate, highLateSecond, mid, low, negative].map((t) => t.id);
      // One at a time: the limit must pick by claim order, not only sort what it picked.
      const oneByOne: string[] = [];
      for (let i = 0; i < expected.length; i++) oneByOne.push((await claimOne()).id);
      assert.deepEqual(oneByOne, expected);
    });

    it('returns a batch in claim order', async () => {
      const late = await enqueueOne({ runAt: T0 - 10 });
      const early = await enqueueOne({ runAt: T0 - 20 });
      const high = await enqueueOne({ priority: 1, runAt: T0 });
      const claimed = await claim({ limit: 10 });
      assert.deepEqual(
        claimed.map((t) => t.id),
        [high.id, early.id, late.id],
      );
    });

    it('takes claim order across successive limited claims', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await enqueueOne({ priority: i % 2 })).id);
      const first = await claim({ limit: 2 });
      const second = await claim({ limit: 2 });
      const third = await claim({ limit: 2 });
      assert.deepEqual(
        [...first, ...second, ...third].map((t) => t.id),
        [ids[1], ids[3], ids[0], ids[2], ids[4]],
      );
      assert.deepEqual(await claim(), []);
    });

    it('takes only due tasks: runAt at or before now', async () => {
      const due = await enqueueOne({ runAt: T0 });
      const later = await enqueueOne({ runAt: T0 + 1000 });
      assert.deepEqual(
        (await claim({ now: T0 })).map((t) => t.id),
        [due.id],
      );
      assert.deepEqual(await claim({ now: T0 + 999 }), []);
      assert.deepEqual(
        (await claim({ now: T0 + 1000 })).map((t) => t.id),
        [later.id],
      );
    });

    it('judges due against the now it is given, even when an earlier call saw a later now', async () => {
      const task = await enqueueOne({ runAt: T0 + 1000 });
      assert.deepEqual(await claim({ names: ['other'], now: T0 + 5000 }), []);
      assert.deepEqual(await claim({ now: T0 }), []);
      assert.equal((await mustGet(task.id)).state, 'queued');
      assert.equal((await claimOne({ now: T0 + 1000 })).id, task.id);
    });

    it('takes only the given names and leaves the others queued and untouched', async () => {
      const email = await enqueueOne({ name: 'email' });
      const unknown = await enqueueOne({ name: 'unknown', priority: 100 });
      const sms = await enqueueOne({ name: 'sms' });
      const claimed = await claim({ names: ['email', 'sms'] });
      assert.deepEqual(claimed.map((t) => t.id).sort(), [email.id, sms.id].sort());
      assert.deepEqual(await store.get(unknown.id), unknown);
      assert.deepEqual(await claim({ names: ['email', 'sms'] }), []);
      assert.deepEqual(await claim({ names: [] }), []);
    });

    it('respects the limit and never hands out a task twice', async () => {
      for (let i = 0; i < 7; i++) await enqueueOne();
      const first = await claim({ limit: 3 });
      const second = await claim({ limit: 3, owner: OTHER_OWNER });
      const third = await claim({ limit: 3 });
      assert.deepEqual([first.length, second.length, third.length], [3, 3, 1]);
      const ids = [...first, ...second, ...third].map((t) => t.id);
      assert.equal(new Set(ids).size, 7);
    });

    it('counts an attempt, sets startedAt and hands out a running task with its payload', async () => {
      const task = await enqueueOne({ data: { hello: 'world' } });
      const claimed = await claimOne({ now: T0 + 5 });
      assert.equal(claimed.id, task.id);
      assert.equal(claimed.state, 'running');
      assert.equal(claimed.attempts, 1);
      assert.deepEqual(claimed.startedAt, new Date(T0 + 5));
      assert.equal(claimed.finishedAt, null);
      assert.deepEqual(claimed.payload, { hello: 'world' });
      assert.equal(claimed.payloadError, null);
      assert.equal(typeof claimed.lease, 'number');
      const { lease: _lease, payloadError: _payloadError, ...stored } = claimed;
      assert.deepEqual(await store.get(task.id), stored);
    });

    it('gives a larger lease token on each claim of the same task', async () => {
      await enqueueOne();
      const first = await claimOne();
      await settleOne({
        id: first.id,
        lease: first.lease,
        state: 'queued',
        at: T0 + 1,
        runAt: T0 + 1,
      });
      const second = await claimOne({ now: T0 + 1 });
      assert.equal(second.id, first.id);
      assert.ok(second.lease > first.lease, `lease ${second.lease} should exceed ${first.lease}`);
      assert.equal(second.attempts, 2);
      assert.deepEqual(second.startedAt, new Date(T0 + 1));
    });
  });
}
