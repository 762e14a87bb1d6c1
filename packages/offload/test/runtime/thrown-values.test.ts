import { join } from 'node:path';
/**
 * Whatever a task throws or rejects with, the attempt fails with a recorded error and the retry
 * policy applies: no crash, no unhandled rejection, no task left `running`, and the other tasks
 * running at the same time carry on. Values that cannot be read safely (revoked proxies, getters
 * and traps that throw, cycles) are fuzzed with fast-check through a real runtime, and covered
 * one by one below; a child process checks that the process survives them with the default logger.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { afterEach, before, after, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import {
  createRuntime,
  DAY,
  defineTask,
  memoryStore,
  PermanentError,
  RetryLaterError,
  type Logger,
  type Runtime,
  type Task,
} from '../../src/index.js';
import { MAX_MESSAGE_LENGTH, MAX_STACK_LENGTH } from '../../src/store/store.js';
import { describeThrown } from '../../src/store/stored-error.js';
import { THROWN_IN_THREAD, throwsInThread } from '../fixtures/thrown-in-thread.js';
import { fromRecipe, recipe } from '../fixtures/thrown-recipes.js';
import {
  cyclicCauses,
  everyTrapThrows,
  frozenCyclicError,
  impostor,
  revokedProxy,
  THROWN_VALUES,
  throwingGetters,
} from '../fixtures/unreadable.js';
import { barrier, captureLogger, FIXTURES } from '../helpers.js';

/** Fuzzed values per property; `THROWN_RUNS=N` sets it. */
const RUNS = Number(process.env.THROWN_RUNS ?? 150);

const runtimes: Runtime[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

before(() => {
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
});
after(() => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
  assert.equal(unhandled.splice(0).length, 0, 'no unhandled rejection or uncaught exception');
});

// ---- Running a task that throws through a real runtime ---------------------------------------

type How = 'throw' | 'reject';

interface Outcome {
  /** The task that threw, as stored. */
  task: Task;
  /** The task that ran at the same time, as stored. */
  other: Task;
  /** What `runtime:error` reported, by `during`. */
  runtimeErrors: string[];
}

/**
 * Runs a task that throws (synchronously) or rejects with `make()`, next to one that waits until
 * the first has failed and then succeeds, on a fresh memory store; returns both as stored.
 */
async function runThrowing(
  make: () => unknown,
  how: How,
  { maxAttempts = 1, logger = captureLogger() as Logger } = {},
): Promise<Outcome> {
  const failed = barrier();
  const other = defineTask({
    name: 'other',
    run: async () => {
      await failed.promise;
      return 'done';
    },
  });
  // Throws on its first run only: a RetryLaterError of 0 ms runs again within the drain.
  let runs = 0;
  const thrower = defineTask({
    name: 'thrower',
    maxAttempts,
    run:
      how === 'throw'
        ? () => {
            if ((runs += 1) > 1) return 'ran again';
            throw make();
          }
        : async () => {
            await Promise.resolve();
            if ((runs += 1) > 1) return 'ran again';
            throw make();
          },
  });
  const runtime = createRuntime({
    store: memoryStore(),
    tasks: [other, thrower],
    logger,
    concurrency: 2,
    // Only reached when the thrower's failure is never recorded: `other` then times out.
    timeout: 1000,
    shutdownGrace: 0,
  });
  runtimes.push(runtime);
  const runtimeErrors: string[] = [];
  runtime.on('runtime:error', ({ during }) => void runtimeErrors.push(during));
  runtime.on('task:error', ({ task }) => {
    if (task.name === 'thrower') failed.open();
  });
  const { id: otherId } = await runtime.enqueue(other, {});
  const { id } = await runtime.enqueue(thrower, {});
  await runtime.drain();
  const [task, otherTask] = await Promise.all([runtime.get(id), runtime.get(otherId)]);
  return { task: task!, other: otherTask!, runtimeErrors };
}

/** The task is in `state` with one recorded, storable error; the other task succeeded. */
function assertRecorded({ task, other, runtimeErrors }: Outcome, state: Task['state']) {
  assert.equal(task.state, state, `state; errors: ${JSON.stringify(task.errors)}`);
  assert.equal(task.errors.length, 1, 'one error recorded');
  const [error] = task.errors;
  assert.equal(error!.attempt, 1);
  assert.equal(typeof error!.name, 'string');
  assert.equal(typeof error!.message, 'string');
  assert.ok(error!.message.length <= MAX_MESSAGE_LENGTH, 'the message is bounded');
  assert.ok(error!.stack === null || error!.stack.length <= MAX_STACK_LENGTH, 'so is the stack');
  assert.deepEqual([other.state, other.result], ['succeeded', 'done'], 'the other task succeeded');
  assert.deepEqual(runtimeErrors, [], 'nothing failed in the runtime');
}

describe('a task that throws or rejects with any value', () => {
  for (const [name, make] of THROWN_VALUES) {
    for (const how of ['throw', 'reject'] as const) {
      const verb = how === 'throw' ? 'throws' : 'rejects with';
      it(`fails with a recorded error when it ${verb} ${name}`, async () => {
        assertRecorded(await runThrowing(make, how), 'failed');
      });
    }
  }

  it('is queued for its retry when attempts are left', async () => {
    for (const make of [revokedProxy, () => everyTrapThrows(), () => impostor(RetryLaterError)]) {
      for (const how of ['throw', 'reject'] as const) {
        const outcome = await runThrowing(make, how, { maxAttempts: 3 });
        assertRecorded(outcome, 'queued');
        assert.equal(outcome.task.attempts, 1, 'the attempt is used up: it is no RetryLaterError');
        const { runAt, errors } = outcome.task;
        assert.ok(runAt.getTime() > errors[0]!.at.getTime(), 'the retry is after a backoff');
      }
    }
  });

  it('is queued again, its attempt given back, at most 100 years on for a RetryLaterError', async () => {
    const outcome = await runThrowing(() => new RetryLaterError(Number.MAX_VALUE), 'reject');
    assertRecorded(outcome, 'queued');
    const { attempts, runAt, errors } = outcome.task;
    assert.equal(attempts, 0);
    assert.equal(runAt.getTime() - errors[0]!.at.getTime(), 100 * 365 * DAY);
  });

  it('fails at once, without retry, when it is a PermanentError whose getters throw', async () => {
    const make = () => throwingGetters(new PermanentError('no retry'));
    assertRecorded(await runThrowing(make, 'reject', { maxAttempts: 3 }), 'failed');
  });

  it('records what can be read of it', async () => {
    const revoked = await runThrowing(revokedProxy, 'reject');
    assert.deepEqual(
      [revoked.task.errors[0]!.name, revoked.task.errors[0]!.message],
      ['NonErrorThrown', 'a non-Error value was thrown: [object]'],
    );
    const getters = await runThrowing(() => throwingGetters(new Error('hidden')), 'throw');
    assert.deepEqual(
      [
        getters.task.errors[0]!.name,
        getters.task.errors[0]!.message,
        getters.task.errors[0]!.stack,
      ],
      ['Error', 'an Error whose message could not be read', null],
    );
    const symbol = await runThrowing(() => Symbol('why'), 'reject');
    assert.equal(symbol.task.errors[0]!.message, 'a non-Error value was thrown: Symbol(why)');
    const huge = await runThrowing(() => 'x'.repeat(20_000_000), 'throw');
    assert.equal(huge.task.errors[0]!.message, `a non-Error value was thrown: ${'x'.repeat(1000)}`);
    const stored = await runThrowing(() => 'a\0b\uD800c', 'throw');
    assert.equal(stored.task.errors[0]!.message, 'a non-Error value was thrown: a\uFFFDb\uFFFDc');
  });
});

describe('a task whose return value cannot be inspected', () => {
  for (const [name, make] of [
    ['a revoked Proxy', revokedProxy],
    [
      'an object whose then getter throws',
      () => ({
        get then() {
          throw revokedProxy();
        },
      }),
    ],
    [
      'a thenable whose then throws',
      () => ({
        then: () => {
          throw revokedProxy();
        },
      }),
    ],
  ] as const) {
    it(`fails with a recorded error when run returns ${name}, and the tasks claimed with it run`, async () => {
      const returns = defineTask({ name: 'returns', maxAttempts: 1, run: () => make() });
      const later = defineTask({ name: 'later', run: () => 'ran' });
      const runtime = createRuntime({
        store: memoryStore(),
        tasks: [returns, later],
        logger: captureLogger(),
        timeout: 2000,
        shutdownGrace: 0,
      });
      runtimes.push(runtime);
      const { id } = await runtime.enqueue(returns, {});
      const { id: laterId } = await runtime.enqueue(later, {});
      await runtime.drain();
      const [task, laterTask] = await Promise.all([runtime.get(id), runtime.get(laterId)]);
      assert.equal(task!.state, 'failed');
      assert.equal(typeof task!.errors[0]!.message, 'string');
      assert.equal(laterTask!.state, 'succeeded');
    });
  }
});

describe("a task with isolate: 'thread'", () => {
  it('fails with a recorded error whatever its thread throws, one task per value', async () => {
    const other = defineTask({ name: 'other', run: () => 'done' });
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [throwsInThread, other],
      logger: captureLogger(),
      concurrency: THROWN_IN_THREAD.length + 1,
      shutdownGrace: 0,
    });
    runtimes.push(runtime);
    const ids = new Map<string, string>();
    for (const value of THROWN_IN_THREAD) {
      ids.set(value, (await runtime.enqueue(throwsInThread, { value })).id);
    }
    const { id: otherId } = await runtime.enqueue(other, {});
    await runtime.drain();
    for (const [value, id] of ids) {
      const task = await runtime.get(id);
      assert.equal(task!.state, 'failed', `${value}: ${JSON.stringify(task!.errors)}`);
      assert.equal(typeof task!.errors[0]!.message, 'string', value);
    }
    assert.equal((await runtime.get(otherId))!.state, 'succeeded');
  });
});

describe('fuzzed thrown values', () => {
  it('are described as bounded, storable text, and describing them never throws', () => {
    fc.assert(
      fc.property(recipe, (r) => {
        const { name, message, stack } = describeThrown(fromRecipe(r));
        for (const text of [name, message, stack ?? '']) {
          assert.equal(typeof text, 'string');
          assert.ok(text.isWellFormed() && !text.includes('\0'), 'storable in every store');
        }
        assert.ok(message.length <= MAX_MESSAGE_LENGTH, 'the message is bounded');
        assert.ok((stack?.length ?? 0) <= MAX_STACK_LENGTH, 'so is the stack');
      }),
      { numRuns: RUNS * 10 },
    );
  });

  it('fail the attempt with a recorded error through a real runtime, sync or async', async () => {
    await fc.assert(
      fc.asyncProperty(recipe, fc.constantFrom<How>('throw', 'reject'), async (r, how) => {
        const outcome = await runThrowing(() => fromRecipe(r), how);
        await Promise.all(runtimes.splice(0).map((runtime) => runtime.stop()));
        assert.equal(unhandled.length, 0, 'no unhandled rejection');
        const { state, errors } = outcome.task;
        if (state !== 'failed') {
          // Queued again (or run again, after 0 ms), the attempt given back.
          assert.equal(errors[0]?.name, 'RetryLaterError', 'only a RetryLaterError runs again');
          assert.ok(Number.isFinite(outcome.task.runAt.getTime()), 'a time every store can hold');
        }
        assertRecorded(outcome, state);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---- Listeners and loggers that read the error -----------------------------------------------

/** A pino logger writing parsed lines to `lines`: it reads errors as it serializes them. */
function pinoLogger(lines: Record<string, unknown>[]): Logger {
  return pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
}

describe('listeners and loggers that read the thrown value', () => {
  for (const [name, make] of [
    ['a revoked Proxy', revokedProxy],
    ['a Proxy whose every trap throws', () => everyTrapThrows()],
    ['a frozen Error that refers to itself', frozenCyclicError],
    ['an Error whose getters throw', () => throwingGetters(new Error('hidden'))],
    ['an Error whose causes form a cycle', cyclicCauses],
  ] as const) {
    it(`logs the failure of a task that rejects with ${name}, through pino`, async () => {
      const lines: Record<string, unknown>[] = [];
      const outcome = await runThrowing(make, 'reject', { logger: pinoLogger(lines) });
      assertRecorded(outcome, 'failed');
      const logged = lines.filter((line) => line.taskId === outcome.task.id && line.level === 50);
      assert.equal(logged.length, 1, JSON.stringify(lines));
      assert.match(String(logged[0]!.msg), /^task failed for good/);
      assert.equal(typeof (logged[0]!.err as { message?: unknown }).message, 'string');
    });
  }

  it('survives listeners that throw the value they were given, and a logger that throws', async () => {
    for (const make of [revokedProxy, frozenCyclicError, () => everyTrapThrows()]) {
      const lines: Record<string, unknown>[] = [];
      const logger = pinoLogger(lines);
      const failed = barrier();
      const other = defineTask({
        name: 'other',
        run: async () => {
          await failed.promise;
          return 'done';
        },
      });
      const thrower = defineTask({
        name: 'thrower',
        maxAttempts: 1,
        run: async () => {
          throw make();
        },
      });
      const runtime = createRuntime({
        store: memoryStore(),
        tasks: [other, thrower],
        logger,
        concurrency: 2,
        timeout: 2000,
        shutdownGrace: 0,
      });
      runtimes.push(runtime);
      runtime.on('task:failed', ({ error }) => {
        failed.open();
        throw error;
      });
      runtime.on('task:error', ({ error }) => String(error));
      runtime.on('runtime:error', ({ error }) => {
        throw error;
      });
      const { id: otherId } = await runtime.enqueue(other, {});
      const { id } = await runtime.enqueue(thrower, {});
      await runtime.drain();
      const [task, otherTask] = await Promise.all([runtime.get(id), runtime.get(otherId)]);
      assert.equal(task!.state, 'failed');
      assert.equal(otherTask!.state, 'succeeded');
      assert.ok(
        lines.some((line) => line.msg === 'an event listener failed'),
        'the listeners that threw are logged',
      );
    }
  });

  it('records failures when every logger call throws', async () => {
    const fail = () => {
      throw revokedProxy();
    };
    const logger: Logger = {
      debug: fail,
      info: fail,
      warn: fail,
      error: fail,
      child: () => logger,
    };
    const { task, other, runtimeErrors } = await runThrowing(revokedProxy, 'reject', { logger });
    assert.deepEqual([task.state, task.errors[0]?.name], ['failed', 'NonErrorThrown']);
    assert.equal(other.state, 'succeeded');
    assert.deepEqual(runtimeErrors, ['a listener of task:error'], 'the log listener failed');
  });
});

// ---- In a real process -----------------------------------------------------------------------

describe('in a real process with the default logger', () => {
  it('exits 0 after tasks threw and rejected with unreadable values, each failed and recorded', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'thrown-values.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `exit code; stderr: ${stderr.slice(0, 2000)}`);
    const report = stdout
      .split('\n')
      .filter((line) => line.startsWith('{"tasks"'))
      .map(
        (line) => JSON.parse(line) as { tasks: Record<string, { state: string; error: unknown }> },
      )
      .at(-1);
    assert.ok(report, `a report line; stdout: ${stdout.slice(0, 2000)}`);
    for (const [name, { state, error }] of Object.entries(report.tasks)) {
      if (name === 'other') assert.equal(state, 'succeeded', name);
      else {
        assert.equal(state, 'failed', name);
        assert.equal(typeof error, 'string', name);
      }
    }
    assert.equal(Object.keys(report.tasks).length, 6);
  });
});
