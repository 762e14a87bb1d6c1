import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineTask, InvalidOptionError, RetryLaterError, SECOND } from '../../src/index.js';
import { barrier, fakeClock, memoryRuntimes, nextEvent } from '../helpers.js';

const runtimeWith = memoryRuntimes();

describe('runtime: groups', () => {
  it("stores the definition's group, chosen from the payload, unless the enqueue gives one", async () => {
    const send = defineTask<{ tenant: number | null }>({
      name: 'send',
      group: (payload) =>
        payload.tenant === null ? null : { key: `tenant:${payload.tenant}`, concurrency: 2 },
      run: () => {},
    });
    const runtime = runtimeWith({ tasks: [send] });
    const chosen = await runtime.enqueue(send, { tenant: 42 });
    assert.deepEqual(chosen.group, { key: 'tenant:42', concurrency: 2, rate: null });
    assert.equal((await runtime.enqueue(send, { tenant: null })).group, null);
    const given = await runtime.enqueue(
      send,
      { tenant: 1 },
      { group: { key: 'smtp:mail1', rate: { max: 10, period: SECOND } } },
    );
    assert.deepEqual(given.group, {
      key: 'smtp:mail1',
      concurrency: null,
      rate: { max: 10, period: 1000 },
    });
    assert.deepEqual((await runtime.get(given.id))?.group, given.group);
  });

  it('refuses a bad group at once, naming the field', async () => {
    assert.throws(
      () => defineTask({ name: 'x', group: { key: '' }, run: () => {} }),
      (error: unknown) => error instanceof InvalidOptionError && /group\.key/.test(error.message),
    );
    assert.throws(
      () => defineTask({ name: 'x', group: { key: 'k', concurency: 2 } as never, run: () => {} }),
      /did you mean "concurrency"/,
    );
    const runtime = runtimeWith({ tasks: [] });
    await assert.rejects(
      runtime.enqueue('x', {}, { group: { key: 'k', concurrency: 0 } }),
      /enqueue options\.group\.concurrency/,
    );
    await assert.rejects(
      runtime.enqueue('x', {}, { group: { key: 'k', rate: { max: 1, period: -1 } } }),
      /enqueue options\.group\.rate\.period/,
    );
    await assert.rejects(runtime.throttle('', 10), /throttle key/);
    await assert.rejects(runtime.pause(' padded '), /task name/);
  });

  it('runs no more tasks of a key at once than its concurrency, while other keys run', async () => {
    const gate = barrier();
    let running = 0;
    let most = 0;
    const hold = defineTask<{ key: string }>({
      name: 'hold',
      group: ({ key }) => ({ key, concurrency: 2 }),
      run: async () => {
        running += 1;
        most = Math.max(most, running);
        await gate.promise;
        running -= 1;
      },
    });
    const quick = defineTask({ name: 'quick', run: () => {} });
    const runtime = runtimeWith({ tasks: [hold, quick], concurrency: 10 });
    for (let i = 0; i < 6; i++) await runtime.enqueue(hold, { key: 'busy' });
    const other = await runtime.enqueue(hold, { key: 'other' });
    const free = await runtime.enqueue(quick, {});
    const otherStarted = nextEvent(runtime, 'task:start', 5000, ({ task }) => task.id === other.id);
    const freeDone = nextEvent(runtime, 'task:success', 5000, ({ task }) => task.id === free.id);
    await runtime.start();
    await otherStarted;
    await freeDone;
    assert.equal(running, 3, 'two of the busy key and the other key');
    gate.open();
    await runtime.drain();
    assert.equal(most, 3);
    const page = await runtime.list({ name: 'hold', state: 'succeeded', limit: 10 });
    assert.equal(page.tasks.length, 7);
  });

  it('starts tasks of a key under a rate as the rate allows, each without using an attempt', async () => {
    const clock = fakeClock();
    const tick = defineTask({
      name: 'tick',
      group: { key: 'api', rate: { max: 2, period: SECOND } },
      run: () => {},
    });
    const runtime = runtimeWith({ tasks: [tick], clock });
    for (let i = 0; i < 5; i++) await runtime.enqueue(tick, {});
    const succeeded = async () => (await runtime.list({ state: 'succeeded' })).tasks.length;
    await runtime.drain();
    assert.equal(await succeeded(), 2);
    clock.advance(SECOND / 2);
    await runtime.drain();
    assert.equal(await succeeded(), 3);
    const queued = (await runtime.list({ state: 'queued' })).tasks;
    assert.deepEqual(
      queued.map((task) => task.attempts),
      [0, 0],
    );
  });

  it('throttles the whole key when a task throws RetryLaterError with throttle, and the task uses no attempt', async () => {
    const clock = fakeClock();
    let calls = 0;
    const call = defineTask<{ provider: string; n: number }>({
      name: 'call',
      group: ({ provider }) => ({ key: provider }),
      run: ({ n }) => {
        calls += 1;
        if (n === 0 && calls === 1) throw new RetryLaterError(30 * SECOND, { throttle: true });
      },
    });
    const runtime = runtimeWith({ tasks: [call], clock });
    const first = await runtime.enqueue(call, { provider: 'limited', n: 0 });
    const second = await runtime.enqueue(call, { provider: 'limited', n: 1 }, { delay: 1 });
    const elsewhere = await runtime.enqueue(call, { provider: 'other', n: 2 }, { delay: 1 });
    await runtime.drain();
    clock.advance(1);
    await runtime.drain();
    assert.equal((await runtime.get(elsewhere.id))?.state, 'succeeded');
    assert.equal((await runtime.get(second.id))?.state, 'queued');
    const thrown = await runtime.get(first.id);
    assert.equal(thrown?.state, 'queued');
    assert.equal(thrown?.attempts, 0);
    assert.equal(thrown?.errors[0]?.name, 'RetryLaterError');
    clock.advance(30 * SECOND);
    await runtime.drain();
    assert.equal((await runtime.get(first.id))?.state, 'succeeded');
    assert.equal((await runtime.get(second.id))?.state, 'succeeded');
  });

  it('throttles a key from outside, for every task of it', async () => {
    const clock = fakeClock();
    const job = defineTask({ name: 'job', group: { key: 'k' }, run: () => {} });
    const runtime = runtimeWith({ tasks: [job], clock });
    await runtime.throttle('k', 10 * SECOND);
    const task = await runtime.enqueue(job, {});
    await runtime.drain();
    assert.equal((await runtime.get(task.id))?.state, 'queued');
    clock.advance(10 * SECOND);
    await runtime.drain();
    assert.equal((await runtime.get(task.id))?.state, 'succeeded');
  });
});

describe('runtime: pause and resume', () => {
  it('claims no task of a paused name until it is resumed; the others run', async () => {
    const clock = fakeClock();
    const a = defineTask({ name: 'a', run: () => {} });
    const b = defineTask({ name: 'b', run: () => {} });
    const runtime = runtimeWith({ tasks: [a, b], clock });
    assert.equal(await runtime.pause('a'), true);
    assert.equal(await runtime.pause('a'), false);
    assert.deepEqual(await runtime.paused(), [{ name: 'a', pausedAt: new Date(clock.now()) }]);
    const held = await runtime.enqueue(a, {});
    const other = await runtime.enqueue(b, {});
    await runtime.drain();
    assert.equal((await runtime.get(held.id))?.state, 'queued');
    assert.equal((await runtime.get(other.id))?.state, 'succeeded');
    assert.equal(await runtime.resume('a'), true);
    assert.equal(await runtime.resume('a'), false);
    assert.deepEqual(await runtime.paused(), []);
    await runtime.drain();
    assert.equal((await runtime.get(held.id))?.state, 'succeeded');
  });

  it('starts the tasks of a resumed name at once in a started runtime', async () => {
    const a = defineTask({ name: 'a', run: () => {} });
    const runtime = runtimeWith({ tasks: [a], pollInterval: 60 * SECOND });
    await runtime.pause('a');
    await runtime.start();
    const task = await runtime.enqueue(a, {});
    const done = nextEvent(runtime, 'task:success', 5000, (e) => e.task.id === task.id);
    await runtime.resume('a');
    await done;
  });
});
