import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  createRuntime,
  DAY,
  defineTask,
  InvalidOptionError,
  InvalidPayloadError,
  memoryStore,
  MemoryStore,
  PermanentError,
  RetryLaterError,
  TaskAbortedError,
  TaskTimeoutError,
  type Runtime,
  type RuntimeOptions,
  type TaskContext,
  type TaskDefinition,
} from '../../src/index.js';
import { Attempt } from '../../src/runtime/attempt.js';
import { RunningAttempts } from '../../src/runtime/running.js';
import { Batcher } from '../../src/runtime/batcher.js';
import { kAnsweredRequest } from '../../src/runtime/runtime.js';
import type { ClaimedTask, ClaimRequest, Settlement } from '../../src/store/store.js';
import { barrier, captureLogger, fakeClock, nextEvent, waitUntil } from '../helpers.js';

const runtimes: Runtime[] = [];

/** A runtime on a fresh memory store with a capturing logger, stopped after each test. */
function runtimeWith(options: Partial<RuntimeOptions>) {
  const logger = captureLogger();
  const runtime = createRuntime({ store: memoryStore(), logger, shutdownGrace: 0, ...options });
  runtimes.push(runtime);
  return { runtime, logger };
}

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});

describe('runtime', () => {
  it("gives a task a logger that adds its id, name and attempt, and writes nothing below the logger's level", async () => {
    const captured = captureLogger();
    let children = 0;
    const logger = {
      ...captured,
      child(bindings: Record<string, unknown>) {
        children += 1;
        return captured.child(bindings);
      },
      isLevelEnabled: (level: string) => level !== 'debug' && level !== 'info',
    };
    const chatty = defineTask({
      name: 'chatty',
      run: (_payload, ctx) => {
        ctx.logger.info({ step: 1 }, 'below the level');
        ctx.logger.warn({ step: 2 }, 'written');
        ctx.logger.error({ step: 3 }, 'written too');
      },
    });
    const { runtime } = runtimeWith({ tasks: [chatty], logger });
    await runtime.start();
    const succeeded = nextEvent(runtime, 'task:success');
    const task = await runtime.enqueue(chatty, {});
    await succeeded;
    const lines = captured.entries.filter((e) => e.fields.step !== undefined);
    assert.deepEqual(
      lines.map((e) => [e.level, e.msg, e.fields.taskId, e.fields.task, e.fields.attempt]),
      [
        ['warn', 'written', task.id, 'chatty', 1],
        ['error', 'written too', task.id, 'chatty', 1],
      ],
    );
    assert.equal(children, 1, 'one child for the task, made for its first line written');
  });

  it('runs an enqueued task once and records success', async () => {
    const seen: unknown[] = [];
    const greet = defineTask<{ name: string }>({
      name: 'greet',
      run: (payload, ctx) => {
        seen.push({ payload, attempt: ctx.attempt, id: ctx.taskId });
      },
    });
    const { runtime } = runtimeWith({ tasks: [greet] });
    await runtime.start();
    const succeeded = nextEvent(runtime, 'task:success');
    const task = await runtime.enqueue(greet, { name: 'Ada' });
    assert.equal(task.state, 'queued');
    const { task: done } = await succeeded;
    assert.equal(done.id, task.id);
    assert.deepEqual(seen, [{ payload: { name: 'Ada' }, attempt: 1, id: task.id }]);
    const stored = await runtime.get(task.id);
    assert.equal(stored?.state, 'succeeded');
    assert.equal(stored?.attempts, 1);
    assert.ok(stored?.finishedAt instanceof Date);
  });

  it('stores what run returns; a value that is not JSON still succeeds, with a warning and no result', async () => {
    const lookup = defineTask<{ n: number }>({
      name: 'lookup',
      run: async ({ n }) => (n === 0 ? new Map() : n === 1 ? undefined : { provider: `p${n}` }),
    });
    const { runtime, logger } = runtimeWith({ tasks: [lookup] });
    await runtime.start();
    const tasks = await runtime.enqueueMany(
      [0, 1, 2].map((n) => ({ task: lookup, payload: { n } })),
    );
    await runtime.drain();
    const stored = await Promise.all(tasks.map((t) => runtime.get(t.id)));
    assert.deepEqual(
      stored.map((t) => [t?.state, t?.result]),
      [
        ['succeeded', null],
        ['succeeded', null],
        ['succeeded', { provider: 'p2' }],
      ],
    );
    const warning = logger.entries.find((entry) => entry.level === 'warn');
    assert.match(warning?.msg ?? '', /not JSON and was not stored/);
    assert.equal(warning?.fields.taskId, tasks[0]!.id);
    assert.match((warning?.fields.err as Error).message, /result is a Map/);
  });

  it('refuses a payload that does not survive JSON, naming where', async () => {
    const { runtime } = runtimeWith({});
    const cases: [unknown, RegExp][] = [
      [{ at: new Date(0) }, /payload\.at is a Date.*toISOString/],
      [{ n: NaN }, /payload\.n is NaN/],
      [{ big: 1n }, /payload\.big is a BigInt/],
      [{ list: [1, undefined] }, /payload\.list\[1\] is undefined/],
      [{ f: () => 1 }, /payload\.f is a function/],
      [new Map(), /payload is a Map/],
      [undefined, /payload is undefined/],
      // eslint-disable-next-line no-sparse-arrays
      [{ list: [1, , 3] }, /payload\.list\[1\] is a hole in a sparse array/],
      [{ [Symbol('s')]: 1 }, /payload has symbol keys/],
    ];
    const cyclic: Record<string, unknown> = { a: { b: {} } };
    (cyclic.a as { b: Record<string, unknown> }).b.back = cyclic;
    cases.push([cyclic, /payload\.a\.b\.back refers back to itself/]);
    let deep: unknown = 1;
    for (let i = 0; i < 65; i++) deep = [deep];
    cases.push([deep, /payload(\[0\]){64} is nested deeper than 64 levels/]);
    for (const [payload, message] of cases) {
      await assert.rejects(runtime.enqueue('any', payload), (error: unknown) => {
        assert.ok(error instanceof InvalidPayloadError);
        assert.match(error.message, message);
        return true;
      });
    }
    assert.equal((await runtime.list()).tasks.length, 0, 'nothing was stored');
    // The same object twice is not a cycle.
    const shared = { n: 1 };
    const task = await runtime.enqueue('any', { one: shared, two: [shared] });
    assert.deepEqual(task.payload, { one: { n: 1 }, two: [{ n: 1 }] });
  });

  it('returns the existing task for a second enqueue with the same key', async () => {
    const { runtime } = runtimeWith({});
    const [first, second] = await Promise.all([
      runtime.enqueue('welcome-email', { to: 'a@example.com' }, { key: 'user-1' }),
      runtime.enqueue('welcome-email', { to: 'other@example.com' }, { key: 'user-1' }),
    ]);
    assert.equal(second.id, first.id);
    assert.deepEqual(second.payload, { to: 'a@example.com' });
    const third = await runtime.enqueue(
      'welcome-email',
      { to: 'a@example.com' },
      { key: 'user-1' },
    );
    assert.equal(third.id, first.id);
    assert.equal((await runtime.list()).tasks.length, 1);
  });

  it('retries with exponential backoff on its clock, then fails for good with every error recorded', async () => {
    const clock = fakeClock();
    let calls = 0;
    const flaky = defineTask({
      name: 'flaky',
      maxAttempts: 3,
      backoff: { base: 1000, max: 60_000, jitter: 0 },
      run: () => {
        calls += 1;
        throw new TypeError(`boom ${calls}`);
      },
    });
    const { runtime, logger } = runtimeWith({ tasks: [flaky], clock });
    const task = await runtime.enqueue(flaky, {});
    const start = clock.now();

    await runtime.drain();
    let stored = (await runtime.get(task.id))!;
    assert.equal(stored.state, 'queued');
    assert.equal(stored.attempts, 1);
    assert.equal(stored.runAt.getTime(), start + 1000, 'first retry after base');

    clock.advance(999);
    await runtime.drain();
    assert.equal(calls, 1, 'not due yet');

    clock.advance(1);
    await runtime.drain();
    stored = (await runtime.get(task.id))!;
    assert.equal(stored.attempts, 2);
    assert.equal(stored.runAt.getTime(), start + 1000 + 2000, 'second retry after twice the base');

    clock.advance(2000);
    await runtime.drain();
    stored = (await runtime.get(task.id))!;
    assert.equal(stored.state, 'failed');
    assert.equal(stored.attempts, 3);
    assert.deepEqual(
      stored.errors.map((e) => [e.attempt, e.name, e.message]),
      [
        [1, 'TypeError', 'boom 1'],
        [2, 'TypeError', 'boom 2'],
        [3, 'TypeError', 'boom 3'],
      ],
    );
    assert.match(stored.errors[0]!.stack ?? '', /runtime\.test\.ts/);
    const failures = logger.entries.filter(
      (e) => e.fields.taskId === task.id && (e.level === 'warn' || e.level === 'error'),
    );
    assert.deepEqual(
      failures.map((e) => [e.level, e.fields.task, e.fields.attempt]),
      [
        ['warn', 'flaky', 1],
        ['warn', 'flaky', 2],
        ['error', 'flaky', 3],
      ],
      'each failed attempt is logged once with name and id',
    );
  });

  it('caps the backoff at max and applies jitter below the exponential delay', async () => {
    const clock = fakeClock();
    const random = [0.5];
    const failing = defineTask({
      name: 'failing',
      maxAttempts: 20,
      backoff: { base: 1000, max: 5000, jitter: 0.5 },
      run: () => {
        throw new Error('no');
      },
    });
    const { runtime } = runtimeWith({ tasks: [failing], clock, random: () => random[0]! });
    const task = await runtime.enqueue(failing, {});
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = clock.now();
      await runtime.drain();
      const stored = (await runtime.get(task.id))!;
      delays.push(stored.runAt.getTime() - before);
      clock.advance(stored.runAt.getTime() - before);
    }
    // 1000, 2000, 4000, 5000 (capped), 5000, each times (1 - 0.5 * 0.5).
    assert.deepEqual(delays, [750, 1500, 3000, 3750, 3750]);
  });

  it('RetryLaterError waits the asked time without using up an attempt; PermanentError fails at once', async () => {
    const clock = fakeClock();
    let snoozes = 0;
    const snoozing = defineTask({
      name: 'snoozing',
      maxAttempts: 2,
      run: () => {
        if (snoozes++ < 3) throw new RetryLaterError(30_000, 'rate limited');
      },
    });
    const hopeless = defineTask({
      name: 'hopeless',
      run: () => {
        throw new PermanentError('the address does not exist');
      },
    });
    const { runtime } = runtimeWith({ tasks: [snoozing, hopeless], clock });
    const a = await runtime.enqueue(snoozing, {});
    const b = await runtime.enqueue(hopeless, {});
    for (let i = 0; i < 3; i++) {
      await runtime.drain();
      const stored = (await runtime.get(a.id))!;
      assert.equal(stored.state, 'queued');
      assert.equal(stored.attempts, 0, 'a snooze does not count');
      assert.equal(stored.errors.at(-1)?.message, 'rate limited');
      clock.advance(30_000);
    }
    await runtime.drain();
    assert.equal((await runtime.get(a.id))!.state, 'succeeded');
    const failed = (await runtime.get(b.id))!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 1);
    assert.equal(failed.errors[0]!.name, 'PermanentError');
  });

  it('times out an attempt, aborts its signal, frees its slot and ignores its late result', async () => {
    const late = barrier();
    let signal: AbortSignal | undefined;
    const stuck = defineTask({
      name: 'stuck',
      timeout: 50,
      maxAttempts: 1,
      run: async (_payload, ctx: TaskContext) => {
        signal = ctx.signal;
        await late.promise; // ignores its signal on purpose
      },
    });
    const quick = defineTask({ name: 'quick', run: () => {} });
    const { runtime } = runtimeWith({ tasks: [stuck, quick], concurrency: 1 });
    await runtime.start();
    const failed = nextEvent(runtime, 'task:failed');
    const stuckTask = await runtime.enqueue(stuck, {});
    const { error } = await failed;
    assert.ok(error instanceof TaskTimeoutError);
    assert.ok(signal?.aborted);
    assert.ok(signal?.reason instanceof TaskTimeoutError);

    const quickDone = nextEvent(runtime, 'task:success');
    await runtime.enqueue(quick, {});
    await quickDone; // ran although the stuck handler still holds on

    late.open();
    await new Promise((resolve) => setImmediate(resolve));
    await runtime.drain();
    const stored = (await runtime.get(stuckTask.id))!;
    assert.equal(stored.state, 'failed', 'the late success is ignored');
    assert.equal(stored.errors[0]!.name, 'TaskTimeoutError');
  });

  it('ignores the result of a run whose lease was taken over (fencing)', async () => {
    const store = memoryStore();
    const release = barrier();
    const slow = defineTask({ name: 'slow', run: () => release.promise });
    const clock = fakeClock();
    const { runtime } = runtimeWith({ store, tasks: [slow], clock, leaseDuration: 1000 });
    const task = await runtime.enqueue(slow, {});
    const started = nextEvent(runtime, 'task:start');
    const draining = runtime.drain();
    await started;

    // The lease runs out (this process looked dead) and another worker takes the task over.
    const rescued = await store.rescue(clock.now() + 2000);
    assert.equal(rescued.length, 1);
    const [claimed] = await store.claim({
      owner: 'other',
      names: ['slow'],
      limit: 1,
      now: clock.now() + 2000,
      leaseExpiresAt: clock.now() + 60_000,
    });
    assert.equal(claimed?.id, task.id);

    release.open();
    await draining;
    const stored = (await store.get(task.id))!;
    assert.equal(stored.state, 'running', 'the first run must not settle the second run');
    assert.equal(
      await store
        .settle([{ id: task.id, lease: claimed.lease, state: 'succeeded', at: clock.now() }])
        .then((r) => r[0]),
      true,
    );
  });

  it('on stop, lets tasks finish within the grace, then hands the rest back without using an attempt', async () => {
    const store = memoryStore();
    const quickGate = barrier();
    let abortReason: unknown;
    const finishing = defineTask({ name: 'finishing', run: () => quickGate.promise });
    const endless = defineTask({
      name: 'endless',
      run: (_p, ctx: TaskContext) =>
        new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            abortReason = ctx.signal.reason;
            resolve();
          }),
        ),
    });
    const runtime = createRuntime({
      store,
      tasks: [finishing, endless],
      shutdownGrace: 100,
      logger: captureLogger(),
    });
    await runtime.start();
    const bothStarted = Promise.all([
      nextEvent(runtime, 'task:start', 5000, (e) => e.task.name === 'finishing'),
      nextEvent(runtime, 'task:start', 5000, (e) => e.task.name === 'endless'),
    ]);
    const a = await runtime.enqueue(finishing, {});
    const b = await runtime.enqueue(endless, {});
    await bothStarted;
    const released = nextEvent(runtime, 'task:release');
    const stopping = runtime.stop();
    assert.equal(runtime.stop(), stopping, 'stop is idempotent');
    quickGate.open();
    await stopping;
    assert.equal((await released).task.id, b.id);
    assert.ok(abortReason instanceof TaskAbortedError);
    assert.equal(abortReason.reason, 'shutdown');

    await store.open();
    const finished = (await store.get(a.id))!;
    const handedBack = (await store.get(b.id))!;
    assert.equal(finished.state, 'succeeded');
    assert.equal(handedBack.state, 'queued');
    assert.equal(handedBack.attempts, 0, 'the interrupted attempt is not counted');
    await assert.rejects(runtime.enqueue('finishing', {}), /runtime has stopped/);
  });

  it('leaves tasks with an unknown name queued, visible and reported', async () => {
    const store = memoryStore();
    const producer = createRuntime({ store, logger: captureLogger() });
    const orphan = await producer.enqueue('removed-in-last-deploy', { a: 1 });
    const known = defineTask({ name: 'known', run: () => {} });
    const { runtime, logger } = runtimeWith({ store, tasks: [known], pruneInterval: 10 });
    const unknown = nextEvent(runtime, 'task:unknown');
    await runtime.start();
    assert.deepEqual(await unknown, { name: 'removed-in-last-deploy', count: 1 });
    await runtime.drain();
    const page = await runtime.list({ name: 'removed-in-last-deploy' });
    assert.deepEqual(
      page.tasks.map((t) => [t.id, t.state]),
      [[orphan.id, 'queued']],
    );
    assert.ok(
      logger.entries.some((e) => e.level === 'warn' && e.fields.task === 'removed-in-last-deploy'),
    );
  });

  it('records handlers that throw non-Errors or return rejected values, and survives failing listeners', async () => {
    const thrown: unknown[] = ['a string', undefined, { code: 42 }, null];
    const odd = defineTask<{ i: number }>({
      name: 'odd',
      maxAttempts: 1,
      run: async ({ i }) => {
        throw thrown[i];
      },
    });
    const { runtime } = runtimeWith({ tasks: [odd] });
    const listenerErrors: unknown[] = [];
    runtime.on('task:start', () => {
      throw new Error('listener bug');
    });
    runtime.on('task:failed', async () => {
      throw new Error('async listener bug');
    });
    runtime.on('runtime:error', ({ error }) => void listenerErrors.push(error));
    const ids = [];
    for (let i = 0; i < thrown.length; i++) ids.push((await runtime.enqueue(odd, { i })).id);
    await runtime.drain();
    await new Promise((resolve) => setImmediate(resolve));
    const messages = [];
    for (const id of ids) {
      const task = (await runtime.get(id))!;
      assert.equal(task.state, 'failed');
      messages.push(task.errors[0]!.message);
    }
    assert.deepEqual(messages, [
      'a non-Error value was thrown: a string',
      'a non-Error value was thrown: undefined',
      'a non-Error value was thrown: {"code":42}',
      'a non-Error value was thrown: null',
    ]);
    assert.equal(listenerErrors.length, 8, 'every listener failure is reported, none crashes');
  });

  it('fails a handler that never settles at its timeout, without leaking its slot', async () => {
    const stuck = defineTask({ name: 'stuck', maxAttempts: 1, run: () => new Promise(() => {}) });
    const quick = defineTask({ name: 'quick', run: () => 'done' });
    const { runtime } = runtimeWith({ tasks: [stuck, quick], concurrency: 1, timeout: 30 });
    await runtime.start();
    const first = await runtime.enqueue(stuck, {});
    const second = await runtime.enqueue(quick, {});
    await runtime.drain();
    const [a, b] = await Promise.all([runtime.get(first.id), runtime.get(second.id)]);
    assert.deepEqual([a?.state, a?.errors[0]?.name], ['failed', 'TaskTimeoutError']);
    assert.deepEqual([b?.state, b?.result], ['succeeded', 'done'], 'the one slot was freed');
  });

  it('cancels a running task by aborting its signal', async () => {
    const aborted = barrier<unknown>();
    const waiting = defineTask({
      name: 'waiting',
      run: (_p, ctx: TaskContext) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.open(ctx.signal.reason);
            resolve();
          });
        }),
    });
    const { runtime } = runtimeWith({ tasks: [waiting] });
    await runtime.start();
    const started = nextEvent(runtime, 'task:start');
    const task = await runtime.enqueue(waiting, {});
    await started;
    const canceled = await runtime.cancel(task.id);
    assert.equal(canceled.state, 'canceled');
    const reason = await aborted.promise;
    assert.ok(reason instanceof TaskAbortedError && reason.reason === 'canceled');
    await runtime.drain();
    assert.equal((await runtime.get(task.id))!.state, 'canceled', 'its late success is ignored');
    await assert.rejects(runtime.cancel(task.id), /TASK_NOT_CANCELABLE|only queued or running/);
    await assert.rejects(runtime.cancel('999999'), /no task has id/);
    const retried = await runtime.retry(task.id);
    assert.equal(retried.state, 'queued');
  });

  it('keeps to its concurrency limit', async () => {
    let active = 0;
    let peak = 0;
    const work = defineTask({
      name: 'work',
      run: async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setImmediate(resolve));
        active -= 1;
      },
    });
    const { runtime } = runtimeWith({ tasks: [work], concurrency: 3 });
    await runtime.enqueueMany(
      Array.from({ length: 50 }, (_, i) => ({ task: work, payload: { i } })),
    );
    await runtime.drain();
    assert.equal(peak, 3);
    const { tasks } = await runtime.list({ state: 'succeeded', limit: 100 });
    assert.equal(tasks.length, 50);
  });

  it('refuses unknown options with a suggestion, and bad values naming the option', () => {
    assert.throws(
      () => createRuntime({ store: memoryStore(), concurrancy: 5 } as RuntimeOptions),
      (error: unknown) =>
        error instanceof InvalidOptionError &&
        /options\.concurrancy.*did you mean "concurrency"/.test(error.message),
    );
    assert.throws(
      () => createRuntime({ store: memoryStore(), concurrency: 0 }),
      /options\.concurrency: must be a whole number from 1/,
    );
    assert.throws(() => createRuntime({ store: memoryStore(), timeout: -1 }), /options\.timeout/);
    // console has no child(), which every task's logger is made with: refused here, not when a
    // task logs and fails for it.
    assert.throws(
      () => createRuntime({ store: memoryStore(), logger: console as never }),
      /options\.logger: must have debug\(\), info\(\), warn\(\), error\(\), child\(\), as a pino logger has; it has no child\(\)/,
    );
    assert.throws(
      () =>
        createRuntime({
          store: memoryStore(),
          tasks: defineTask({ name: 't', run() {} }) as never,
        }),
      /options\.tasks: must be an array/,
    );
    assert.throws(
      () => createRuntime({ store: memoryStore(), clock: {} as never }),
      /options\.clock/,
    );
    // A backoff that is not an object was ignored, and null crashed.
    for (const backoff of [1000, null]) {
      assert.throws(
        () => defineTask({ name: 't', run() {}, backoff: backoff as never }),
        /backoff: must be an object of options \(base, max, jitter\)/,
      );
    }
    assert.throws(
      () => defineTask({ name: 't', run() {}, backoff: { base: 10_000, max: 10 } }),
      /backoff\.max: must be a number of milliseconds from 10000/,
    );
    // Retention is no timer: a month is fine.
    createRuntime({ store: memoryStore(), retention: 30 * DAY });
    assert.throws(() => defineTask({ name: '', run: () => {} }), /task name/);
    // Names the stores cannot hold as given, or that would break a log line.
    for (const name of ['caf\uD800', 'a\u0000b', 'two\nlines']) {
      assert.throws(
        () => defineTask({ name, run: () => {} }),
        /task name: .*control characters or unpaired surrogates/,
        JSON.stringify(name),
      );
    }
    assert.throws(
      () => defineTask({ name: 'x', run: () => {}, maxAttemps: 3 } as never),
      /did you mean "maxAttempts"/,
    );
  });

  it('does not start again once stopped, and answers RUNTIME_STOPPED to reads after stop', async () => {
    const { runtime } = runtimeWith({});
    await runtime.start();
    await runtime.stop();
    await assert.rejects(runtime.start(), { code: 'RUNTIME_STOPPED' });
    await assert.rejects(runtime.get('1'), { code: 'RUNTIME_STOPPED' });
    await assert.rejects(runtime.list(), { code: 'RUNTIME_STOPPED' });
    await assert.rejects(runtime.cancel('1'), { code: 'RUNTIME_STOPPED' });
    await assert.rejects(runtime.retry('1'), { code: 'RUNTIME_STOPPED' });
  });

  it('refuses bad enqueue options before storing anything', async () => {
    const { runtime } = runtimeWith({});
    await assert.rejects(runtime.enqueue('t', {}, { delay: -5 }), /enqueue options\.delay/);
    await assert.rejects(runtime.enqueue('t', {}, { delay: 5, runAt: new Date() }), /not both/);
    await assert.rejects(runtime.enqueue('t', {}, { priority: 1.5 }), /enqueue options\.priority/);
    await assert.rejects(runtime.enqueue('t', {}, { runAt: new Date('nope') }), /valid Date/);
    await assert.rejects(runtime.enqueue('t', {}, { prio: 1 } as never), /did you mean "priority"/);
    await assert.rejects(
      runtime.list({ state: 'done' as never }),
      /list filter\.state: must be one of/,
    );
    await assert.rejects(runtime.list({ limit: 0 }), /list filter\.limit/);
    await assert.rejects(runtime.list(null as never), /list filter: must be an object/);
    await assert.rejects(
      runtime.enqueueMany({} as never),
      /enqueueMany requests: must be an array/,
    );
    await assert.rejects(
      runtime.enqueueMany([{ task: 't', payload: {} }, null as never]),
      /enqueueMany requests\[1\]: must be an object/,
    );
    await assert.rejects(
      runtime.enqueue('t', {}, 'abc' as never),
      /enqueue options: must be an object of options/,
    );
    for (const key of ['x\u0000', 'x\uD800']) {
      await assert.rejects(
        runtime.enqueue('t', {}, { key }),
        /enqueue options\.key: .*without NUL or unpaired surrogates/,
      );
      await assert.rejects(runtime.list({ keyPrefix: key }), /list filter\.keyPrefix/);
    }
    await assert.rejects(runtime.enqueue('caf\uD800', {}), /task name/);
    await assert.rejects(
      runtime.list({ name: 5 as never }),
      /list filter\.name: must be a task name/,
    );
    assert.equal((await runtime.list()).tasks.length, 0);
  });

  it('starts a task enqueued later than its delay only when due', async () => {
    const clock = fakeClock();
    const ran: string[] = [];
    const later = defineTask<string>({ name: 'later', run: (p) => void ran.push(p) });
    const { runtime } = runtimeWith({ tasks: [later], clock });
    await runtime.enqueue(later, 'b', { delay: 5000, priority: 0 });
    await runtime.enqueue(later, 'a', { runAt: new Date(clock.now() + 1000) });
    await runtime.enqueue(later, 'now', { priority: -1 });
    await runtime.drain();
    assert.deepEqual(ran, ['now']);
    clock.advance(5000);
    await runtime.drain();
    assert.deepEqual(ran, ['now', 'a', 'b']);
  });

  it('waits for maintenance under way before closing the store on stop', async () => {
    const entered = barrier();
    const gate = barrier();
    class SlowPruneStore extends MemoryStore {
      override async prune(before: number, limit: number): Promise<number> {
        entered.open();
        await gate.promise;
        return super.prune(before, limit);
      }
    }
    const noop = defineTask({ name: 'noop', run: () => {} });
    const { runtime } = runtimeWith({
      store: new SlowPruneStore(),
      tasks: [noop],
      pruneInterval: 1,
    });
    const errors: unknown[] = [];
    runtime.on('runtime:error', ({ error }) => void errors.push(error));
    await runtime.start();
    await entered.promise;
    const stopped = runtime[Symbol.asyncDispose]();
    gate.open();
    await stopped;
    assert.deepEqual(errors, []);
  });

  /** A runtime on a memory store that counts its claims and outcome writes, and `count` successes. */
  function counting(tasks: TaskDefinition<never>[], count: number) {
    const calls = { claim: 0, settle: 0 };
    class CountingStore extends MemoryStore {
      override claim(request: ClaimRequest) {
        calls.claim += 1;
        return super.claim(request);
      }
      override settle(settlements: readonly Settlement[]) {
        calls.settle += 1;
        return super.settle(settlements);
      }
    }
    const { runtime } = runtimeWith({ store: new CountingStore(), tasks });
    let succeeded = 0;
    const all = barrier();
    runtime.on('task:success', () => {
      if (++succeeded === count) all.open();
    });
    return { runtime, calls, allSucceeded: all.promise };
  }

  it('lets tasks that arrive one by one share a claim', async () => {
    const quick = defineTask({ name: 'quick', run: () => {} });
    const { runtime, calls, allSucceeded } = counting([quick], 20);
    await runtime.start();
    for (let i = 0; i < 20; i++) {
      await runtime.enqueue(quick, {});
      await new Promise(setImmediate);
    }
    await allSucceeded;
    assert.ok(calls.claim < 20, `20 tasks, one a turn, took ${calls.claim} claims`);
  });

  it('lets tasks that finish one by one share the writes of their outcomes', async () => {
    const staggered = defineTask<{ turns: number }>({
      name: 'staggered',
      run: async ({ turns }) => {
        for (let i = 0; i < turns; i++) await new Promise(setImmediate);
      },
    });
    const { runtime, calls, allSucceeded } = counting([staggered], 30);
    await runtime.enqueueMany(
      Array.from({ length: 30 }, (_, turns) => ({ task: staggered, payload: { turns } })),
    );
    await runtime.start();
    await allSucceeded;
    assert.ok(calls.settle < 15, `30 outcomes, one a turn, took ${calls.settle} writes`);
  });

  it('starts at most one claim of tasks per event-loop turn, so a backlog cannot hold the loop', async () => {
    // With no requests answered a claim takes the free slots and up to five times as many to
    // wait for one (see Prefetch): 300 here.
    const quick = defineTask({ name: 'quick', run: () => {} });
    const timed = defineTask({
      name: 'timed',
      run: () => new Promise((resolve) => setTimeout(resolve, 1)),
    });
    const { runtime } = runtimeWith({ tasks: [quick, timed], concurrency: 50 });
    await runtime.enqueueMany([
      ...Array.from({ length: 200 }, (_, i) => ({ task: timed, payload: { i } })),
      ...Array.from({ length: 3000 }, (_, i) => ({ task: quick, payload: { i } })),
    ]);
    let startsThisTurn = 0;
    let mostInOneTurn = 0;
    let turns = 0;
    runtime.on('task:start', () => {
      startsThisTurn += 1;
      mostInOneTurn = Math.max(mostInOneTurn, startsThisTurn);
    });
    let counting = true;
    const turn = () => {
      turns += 1;
      startsThisTurn = 0;
      if (counting) setImmediate(turn);
    };
    let succeeded = 0;
    const allDone = new Promise<void>((resolve) =>
      runtime.on('task:success', () => void (++succeeded === 3200 && resolve())),
    );
    turn();
    await runtime.start();
    await allDone;
    counting = false;
    assert.ok(mostInOneTurn <= 300, `${mostInOneTurn} tasks started in one turn`);
    assert.ok(turns >= 3200 / 300, `only ${turns} turns for 3,200 tasks`);
  });

  it('with no requests answered, claims a task ahead of a free slot, renews its lease, and on stop hands it back unstarted', async () => {
    const claimedAhead = barrier();
    const renewed: string[] = [];
    class WatchedStore extends MemoryStore {
      override async claim(request: ClaimRequest) {
        const tasks = await super.claim(request);
        if (tasks.some((task) => task.name === 'next')) claimedAhead.open();
        return tasks;
      }
      override renew(leases: readonly { id: string; lease: number }[], expiresAt: number) {
        renewed.push(...leases.map((l) => l.id));
        return super.renew(leases, expiresAt);
      }
    }
    const hold = barrier();
    const first = defineTask({ name: 'first', run: () => hold.promise });
    const nextRuns: number[] = [];
    const next = defineTask({ name: 'next', run: () => void nextRuns.push(1) });
    const store = new WatchedStore();
    const { runtime } = runtimeWith({
      store,
      tasks: [first, next],
      concurrency: 1,
      leaseDuration: 60,
      shutdownGrace: 0,
    });
    await runtime.start();
    const a = await runtime.enqueue(first, {});
    const released = nextEvent(runtime, 'task:release');
    const b = await runtime.enqueue(next, {});
    await claimedAhead.promise;
    await waitUntil('the lease of the task waiting for a slot to be renewed', async () =>
      renewed.includes(b.id),
    );
    const stopped = runtime.stop();
    assert.equal((await released).task.id, b.id);
    hold.open();
    await stopped;
    const reopened = createRuntime({ store, logger: captureLogger() });
    const [one, two] = await Promise.all([reopened.get(a.id), reopened.get(b.id)]);
    assert.deepEqual([two?.state, two?.attempts], ['queued', 0], 'handed back, its attempt unused');
    assert.equal(one?.attempts, 1);
    assert.deepEqual(nextRuns, [], 'the task waiting for a slot never ran');
    await reopened.stop();
  });

  it('a task claimed ahead and canceled before a slot freed never runs', async () => {
    const claimedAhead = barrier();
    class WatchedStore extends MemoryStore {
      override async claim(request: ClaimRequest) {
        const tasks = await super.claim(request);
        if (tasks.some((task) => task.name === 'next')) claimedAhead.open();
        return tasks;
      }
    }
    const hold = barrier();
    const first = defineTask({ name: 'first', run: () => hold.promise });
    const nextRuns: number[] = [];
    const next = defineTask({ name: 'next', run: () => void nextRuns.push(1) });
    const { runtime } = runtimeWith({
      store: new WatchedStore(),
      tasks: [first, next],
      concurrency: 1,
    });
    await runtime.start();
    const a = await runtime.enqueue(first, {});
    const b = await runtime.enqueue(next, {});
    await claimedAhead.promise;
    assert.equal((await runtime.cancel(b.id)).state, 'canceled');
    const done = nextEvent(runtime, 'task:success');
    hold.open();
    assert.equal((await done).task.id, a.id);
    await runtime.drain();
    assert.deepEqual(nextRuns, [], 'the canceled task never ran');
    assert.equal((await runtime.get(b.id))?.state, 'canceled');
  });

  /**
   * Drains `count` tasks that each hold the event loop `taskMs` and returns how many tasks each
   * claim asked for and, for each claim after the first, how long the loop was left to others
   * since the one before had started its tasks, and how long that one held it.
   */
  async function drainTimes(answering: boolean, count: number, taskMs: number) {
    const claims: number[] = [];
    const limits: number[] = [];
    class TimedStore extends MemoryStore {
      override claim(request: ClaimRequest) {
        claims.push(performance.now());
        limits.push(request.limit);
        return super.claim(request);
      }
    }
    const started: number[] = [];
    const busy = defineTask({
      name: 'busy',
      run: () => {
        const until = performance.now() + taskMs;
        while (performance.now() < until);
        started.push(performance.now());
      },
    });
    const { runtime } = runtimeWith({ store: new TimedStore(), tasks: [busy], concurrency: 100 });
    await runtime.enqueueMany(
      Array.from({ length: count }, (_, i) => ({ task: busy, payload: { i } })),
    );
    const requests = answering ? setInterval(() => runtime[kAnsweredRequest](), 5) : undefined;
    if (answering) runtime[kAnsweredRequest]();
    let succeeded = 0;
    const allDone = new Promise<void>((resolve) =>
      runtime.on('task:success', () => void (++succeeded === count && resolve())),
    );
    await runtime.start();
    await allDone;
    clearInterval(requests);
    const gaps: { left: number; held: number }[] = [];
    for (let i = 1; i < claims.length; i++) {
      // The tasks of claim i - 1 are those started between it and claim i.
      const last = started.filter((at) => at < claims[i]!).at(-1)!;
      if (last < claims[i - 1]!) continue;
      gaps.push({ left: claims[i]! - last, held: last - claims[i - 1]! });
    }
    return { gaps, limits };
  }

  it('while requests are answered, a draining backlog claims tasks that hold the loop one at a time and leaves the loop as long as each claim held it', async () => {
    const { gaps, limits } = await drainTimes(true, 30, 5);
    // The first claim guesses; each later one knows that one task takes longer than a turn's 1 ms.
    assert.deepEqual(new Set(limits.slice(1)), new Set([1]));
    assert.ok(gaps.length >= 3, `${gaps.length} claims after the first`);
    for (const { left, held } of gaps) {
      // Timers count whole milliseconds: one may fire up to 1 ms before the time asked.
      assert.ok(left >= held - 1, `left the loop ${left} ms after holding it ${held} ms`);
    }
  });

  it('while requests are answered, claims quick tasks more at a time, 25 at most', async () => {
    const { limits } = await drainTimes(true, 400, 0);
    assert.ok(
      Math.max(...limits) > limits[0]! && Math.max(...limits) <= 25,
      `claims asked for ${limits.join(', ')} tasks`,
    );
  });

  it('with no requests answered, claims the free slots and as many as started lately, claim after claim', async () => {
    const { gaps, limits } = await drainTimes(false, 600, 1);
    // First the 100 free slots; then also the 100 that started in the last 100 ms, to wait here.
    assert.equal(limits[0], 100);
    assert.ok(
      limits.slice(1, -1).every((limit) => limit > 100 && limit <= 600),
      `claims asked for ${limits.join(', ')} tasks`,
    );
    assert.ok(gaps.length >= 3, `${gaps.length} claims after the first`);
    const lefts = gaps.map((g) => g.left).sort((a, b) => a - b);
    const median = lefts[Math.floor(lefts.length / 2)]!;
    // Each claim held the loop 100 ms or more; the next came in a later turn, not after a wait.
    assert.ok(median < 25, `the loop was left ${lefts.join(', ')} ms between claims`);
  });
});

describe('RunningAttempts', () => {
  const attempt = (id: string) => new Attempt({ id } as ClaimedTask);

  it('counts, finds and lists the attempts added, and reuses the slots of those deleted', () => {
    const running = new RunningAttempts();
    const [a, b, c] = [attempt('1'), attempt('2'), attempt('3')];
    running.add(a);
    running.add(b);
    running.delete(a);
    running.add(c);
    assert.equal(running.size, 2);
    assert.equal(c.slot, 0, 'the freed slot is taken again');
    assert.equal(running.get('3'), c);
    assert.equal(running.get('1'), undefined);
    assert.deepEqual(
      [...running].map((x) => x.task.id),
      ['3', '2'],
    );
  });

  it('ignores an attempt deleted twice, or one it does not hold', () => {
    const running = new RunningAttempts();
    const [a, b] = [attempt('1'), attempt('2')];
    running.add(a);
    running.delete(a);
    running.add(b);
    running.delete(a);
    running.delete(attempt('3'));
    assert.equal(running.size, 1);
    assert.equal(running.get('2'), b);
  });
});

describe('Batcher', () => {
  /** A batcher that records its writes and answers each item with itself. */
  function recording(cooldown: number, maxBatch?: number) {
    const writes: number[][] = [];
    const batcher = new Batcher(
      async (items: number[]) => {
        writes.push(items);
        return items;
      },
      { cooldown, maxBatch },
    );
    const add = (item: number) =>
      new Promise<number>((resolve, reject) => batcher.add(item, resolve, reject));
    return { batcher, writes, add };
  }

  it('with a cooldown, writes a call after a quiet moment at once and those that follow within it together', async () => {
    const { writes, add } = recording(50);
    const results: Promise<number>[] = [];
    for (const item of [1, 2, 3]) {
      results.push(add(item));
      await new Promise(setImmediate);
    }
    assert.deepEqual(await Promise.all(results), [1, 2, 3]);
    assert.deepEqual(writes, [[1], [2, 3]]);
  });

  it('writes at most maxBatch items at a time, the rest from the next turn without waiting out its cooldown', async () => {
    const { writes, add } = recording(60_000, 2);
    const heard: number[] = [];
    const results = [1, 2, 3, 4, 5].map((item) =>
      add(item).then((value) => {
        heard.push(writes.length);
        return value;
      }),
    );
    assert.deepEqual(await Promise.all(results), [1, 2, 3, 4, 5]);
    assert.deepEqual(writes, [[1, 2], [3, 4], [5]]);
    // The callers of each write heard back before the next began: it waited for another turn.
    assert.deepEqual(heard, [1, 1, 2, 2, 3]);
  });

  it(
    'writes at once when asked to flush, without waiting out its cooldown',
    { timeout: 10_000 },
    async () => {
      const { batcher, writes, add } = recording(60_000);
      await add(1);
      void add(2);
      await batcher.flushed();
      assert.deepEqual(writes, [[1], [2]]);
    },
  );
});
