/**
 * A notification that joins a digest just as its window closes: whichever way the two meet, the
 * event is sent once, in exactly one window. The window's run is made to happen at the worst
 * moments of a join (after its record is written, and before), with an injected clock.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  createRuntime,
  memoryStore,
  SECOND,
  type Runtime,
  type Store,
} from '../../../offload/src/index.js';
import { postgresStore } from '../../../offload/src/postgres/index.js';
import { captureLogger, fakeClock } from '../../../offload/test/helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../../../offload/test/pg-helpers.js';
import {
  DIGEST_TASK,
  Notifications,
  type DigestResult,
  type JoinedDigest,
} from '../../src/index.js';
import { DIGEST_EVENTS } from '../../src/digests.js';
import type { PlannedDelivery } from '../../src/prepare.js';

const running: Runtime[] = [];
const schemas: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((runtime) => runtime.stop()));
  await Promise.all(schemas.splice(0).map((schema) => dropSchema(schema)));
});

/** The stores the races run on: in memory, and on PostgreSQL, where processes share windows. */
const STORES: [string, () => Store][] = [
  ['memory', () => memoryStore()],
  [
    'PostgreSQL',
    () => {
      const schema = uniqueSchema('digest');
      schemas.push(schema);
      return postgresStore({ connectionString: TEST_DATABASE_URL, schema });
    },
  ],
];

const OPS: PlannedDelivery = { channel: 'log', to: 'ops' };
const REQUEST = { key: 'builds', window: 2 * SECOND, template: null };
const content = (body: string) => ({ subject: null, body, html: null, data: null });

/**
 * Notifications on a memory store; `before` hooks let a test run the windows at a chosen step
 * of a join: `onRecheck` when the join reads the window again, `onWrite` before the event's
 * record is written.
 */
function setUp(makeStore: () => Store) {
  const clock = fakeClock(Date.UTC(2026, 0, 14, 10));
  const hooks: { onRecheck?: () => Promise<void>; onWrite?: () => Promise<void> } = {};
  const inner = makeStore();
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (name === 'putRecord') {
        return async (record: { collection: string }, now: number) => {
          if (record.collection === DIGEST_EVENTS && hooks.onWrite) {
            const hook = hooks.onWrite;
            delete hooks.onWrite;
            await hook();
          }
          return inner.putRecord(record as Parameters<Store['putRecord']>[0], now);
        };
      }
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
  const notifications = new Notifications({ store, clock, demoDelay: 0 });
  const runtime = createRuntime({
    store,
    tasks: notifications.tasks,
    clock,
    logger: captureLogger(),
  });
  running.push(runtime);
  notifications.attach({
    enqueue: runtime.enqueue.bind(runtime),
    enqueueMany: runtime.enqueueMany.bind(runtime),
    list: runtime.list.bind(runtime),
    get: async (id) => {
      if (hooks.onRecheck) {
        const hook = hooks.onRecheck;
        delete hooks.onRecheck;
        await hook();
      }
      return runtime.get(id);
    },
  } as Pick<Runtime, 'enqueue' | 'enqueueMany' | 'get' | 'list'>);
  const join = (id: string, now = new Date(clock.now())): Promise<JoinedDigest> =>
    notifications.digests.join(OPS, REQUEST, id, content(id), now);
  /** Runs the windows due by the clock moved `ms` ahead. */
  const closeWindows = async (ms: number) => {
    clock.advance(ms);
    await runtime.drain();
  };
  const result = async (task: string) =>
    (await runtime.get(task))?.result as unknown as DigestResult | null;
  return { clock, hooks, inner, runtime, join, closeWindows, result };
}

for (const [kind, makeStore] of STORES) {
  describe(`joining a digest as its window closes (${kind})`, { timeout: 30_000 }, () => {
    it('stays in the window that read its record before the join looked again', async () => {
      const { hooks, inner, join, closeWindows, result } = setUp(makeStore);
      const first = await join('ntf_first');
      // The late one read its clock before the close; the window runs between its write and its
      // second look.
      hooks.onRecheck = () => closeWindows(2 * SECOND);
      const late = await join('ntf_late');
      assert.equal(late.task, first.task, 'the window took it');
      assert.deepEqual((await result(first.task))?.notifications, ['ntf_first', 'ntf_late']);
      assert.deepEqual(await inner.listRecords(DIGEST_EVENTS, { limit: 10 }), [], 'all sent');
    });

    it('moves to the next window when the window ran before its record was written', async () => {
      const { hooks, runtime, join, closeWindows, result } = setUp(makeStore);
      const first = await join('ntf_first');
      hooks.onWrite = () => closeWindows(2 * SECOND);
      const late = await join('ntf_late');
      assert.notEqual(late.task, first.task);
      assert.deepEqual((await result(first.task))?.notifications, ['ntf_first']);
      await closeWindows(2 * SECOND);
      assert.deepEqual((await result(late.task))?.notifications, ['ntf_late']);
      const windows = await runtime.list({ name: DIGEST_TASK });
      assert.equal(windows.tasks.length, 2);
    });

    it('joins the window again after a crash between its steps: the same event once', async () => {
      const { join, closeWindows, result } = setUp(makeStore);
      const first = await join('ntf_a');
      // The same notification joined again (a retried request with its Idempotency-Key).
      assert.equal((await join('ntf_a')).task, first.task);
      await closeWindows(2 * SECOND);
      assert.deepEqual((await result(first.task))?.notifications, ['ntf_a']);
    });
  });
}
