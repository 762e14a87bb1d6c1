import assert from 'node:assert/strict';
import { afterEach, beforeEach } from 'node:test';
import type { ClaimedTask, NewTask, Settlement, Store } from '../../../src/store/store.js';
import type { Json, Task, TaskError } from '../../../src/types.js';
import { newStoredTask, T0 } from '../../helpers.js';

/**
 * Gives a fresh, empty store (not yet opened) and a cleanup that removes whatever it left behind;
 * with `connect`, a second store (not yet opened) on the same database, as another process opens.
 */
export type MakeStore = () => Promise<{
  store: Store;
  cleanup(): Promise<void>;
  connect?(): Store;
}>;

export const LEASE = 30_000;
export const OWNER = 'worker-a';
export const OTHER_OWNER = 'worker-b';

/** Builds a new task; tests override what they check. */
export function newTask(overrides: Partial<NewTask> & { data?: Json } = {}): NewTask {
  const { data, ...rest } = overrides;
  return newStoredTask({
    name: 'email',
    payload: JSON.stringify('data' in overrides ? data : { to: 'a@example.com' }),
    ...rest,
  });
}

export function taskError(attempt: number, at: number, message = `failure ${attempt}`): TaskError {
  return {
    attempt,
    at: new Date(at),
    name: 'Error',
    message,
    stack: `Error: ${message}\n    at test`,
  };
}

export function lease({ id, lease }: ClaimedTask): { id: string; lease: number } {
  return { id, lease };
}

export interface ClaimOptions {
  names?: string[];
  limit?: number;
  now?: number;
  owner?: string;
  leaseExpiresAt?: number;
}

/** The store of the running test and the shorthands its tests share. */
export interface StoreUnderTest {
  /** Stands for the store of whichever test is running. */
  store: Store;
  enqueue(...tasks: NewTask[]): Promise<Task[]>;
  enqueueOne(overrides?: Parameters<typeof newTask>[0]): Promise<Task>;
  /** Claims as `OWNER`, for `email`, up to 10 tasks, at `T0`, for one `LEASE`, unless told. */
  claim(options?: ClaimOptions): Promise<ClaimedTask[]>;
  claimOne(options?: ClaimOptions): Promise<ClaimedTask>;
  settleOne(settlement: Settlement): Promise<boolean>;
  mustGet(id: string): Promise<Task>;
}

/**
 * Registers, in the calling `describe`, hooks that give each test a fresh store, opened and with
 * `OWNER` and `OTHER_OWNER` registered, and that close and clean it up afterwards. Times are
 * passed in explicitly: no sleeps, no real clock.
 */
export function useStore(makeStore: MakeStore): StoreUnderTest {
  let current: Store | undefined;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ store: current, cleanup } = await makeStore());
    await current.open();
    await current.registerWorker(OWNER);
    await current.registerWorker(OTHER_OWNER);
  });

  afterEach(async () => {
    await current!.close();
    await cleanup();
    current = undefined;
  });

  // Tests name the store once, when they are registered; each call goes to the current one.
  const store = new Proxy({} as Store, {
    get(_target, key) {
      assert.ok(current, 'the store exists only while a test runs');
      const value: unknown = Reflect.get(current, key);
      return typeof value === 'function' ? value.bind(current) : value;
    },
  });

  async function enqueue(...tasks: NewTask[]): Promise<Task[]> {
    const results = await store.enqueue(tasks);
    return results.map((r) => r.task);
  }

  async function enqueueOne(overrides: Parameters<typeof newTask>[0] = {}): Promise<Task> {
    const [task] = await enqueue(newTask(overrides));
    return task!;
  }

  function claim(options: ClaimOptions = {}): Promise<ClaimedTask[]> {
    const now = options.now ?? T0;
    return store.claim({
      owner: options.owner ?? OWNER,
      names: options.names ?? ['email'],
      limit: options.limit ?? 10,
      now,
      leaseExpiresAt: options.leaseExpiresAt ?? now + LEASE,
    });
  }

  async function claimOne(options: ClaimOptions = {}): Promise<ClaimedTask> {
    const claimed = await claim({ limit: 1, ...options });
    assert.equal(claimed.length, 1, 'expected to claim one task');
    return claimed[0]!;
  }

  async function settleOne(settlement: Settlement): Promise<boolean> {
    const [applied] = await store.settle([settlement]);
    return applied!;
  }

  async function mustGet(id: string): Promise<Task> {
    const task = await store.get(id);
    assert.ok(task, `task ${id} should exist`);
    return task;
  }

  return { store, enqueue, enqueueOne, claim, claimOne, settleOne, mustGet };
}
