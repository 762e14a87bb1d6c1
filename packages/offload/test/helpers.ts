import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NewTask } from '../src/store/store.js';
import type { Logger, Task } from '../src/types.js';
import type { RuntimeOptions } from '../src/runtime/options.js';
import { createRuntime, type Runtime } from '../src/runtime/runtime.js';
import { memoryStore } from '../src/store/memory.js';
import type { RuntimeEventName, RuntimeEvents } from '../src/runtime/events.js';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger that keeps what it is told, so tests can assert what an operator would see. */
export function captureLogger(
  bindings: Record<string, unknown> = {},
  entries: LogEntry[] = [],
): Logger & { entries: LogEntry[] } {
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg?: string): void => {
      entries.push({ level, fields: { ...bindings, ...obj }, msg });
    };
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => captureLogger({ ...bindings, ...more }, entries),
  };
}

/** A clock that moves only when told to. */
export function fakeClock(start = Date.UTC(2026, 0, 1)): {
  now(): number;
  advance(ms: number): void;
} {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Resolves with the next event of this kind, or rejects after `timeout` ms. */
export function nextEvent<E extends RuntimeEventName>(
  runtime: Runtime,
  event: E,
  timeout = 5000,
  where: (payload: RuntimeEvents[E]) => boolean = () => true,
): Promise<RuntimeEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event within ${timeout} ms`));
    }, timeout);
    const off = runtime.on(event, (payload) => {
      if (!where(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}

/** A promise with its resolve function outside: a barrier for tests of concurrency. */
export function barrier<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Resolves with task `id` once it is succeeded, failed or canceled; rejects after `timeout` ms. */
export function finished(runtime: Runtime, id: string, timeout = 5000): Promise<Task> {
  if (typeof id !== 'string') return Promise.reject(new Error(`no task id to wait for: ${id}`));
  return new Promise((resolve, reject) => {
    const offs: (() => void)[] = [];
    const stop = () => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`task ${id} did not finish within ${timeout} ms`));
    }, timeout);
    const check = async () => {
      const task = await runtime.get(id);
      if (task && ['succeeded', 'failed', 'canceled'].includes(task.state)) {
        stop();
        resolve(task);
      }
    };
    for (const event of ['task:success', 'task:failed', 'task:cancel'] as const) {
      offs.push(runtime.on(event, ({ task }) => void (task.id === id && check())));
    }
    void check().catch(reject);
  });
}

/** The moment store tests count from: they pass times in, and never read the real clock. */
export const T0 = Date.UTC(2030, 0, 1);

/** A task as a store takes it (`job`, due at T0); tests override what they check. */
export function newStoredTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    name: 'job',
    payload: '{"n":1}',
    priority: 0,
    maxAttempts: 3,
    timeout: null,
    key: null,
    group: null,
    runAt: T0,
    createdAt: T0,
    trace: null,
    ...overrides,
  };
}

/**
 * Polls `condition` until it holds, failing after `timeout` ms: a bounded poll, for state that only
 * another process or the database shows and that sends no event here.
 */
export async function waitUntil(
  what: string,
  condition: () => Promise<boolean>,
  { timeout = 10_000, interval = 50 } = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** A temporary directory, removed by the returned function. */
export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'offload-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The root of the repository, and the library's tests and their fixtures in it. */
export const ROOT = join(import.meta.dirname, '../../..');
export const FIXTURES = join(import.meta.dirname, 'fixtures');

/**
 * For a test file: makes runtimes on fresh memory stores with a capturing logger and no shutdown
 * grace, and stops them after each test, in the order made.
 */
export function memoryRuntimes(): (options: Partial<RuntimeOptions>) => Runtime {
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const runtime of runtimes.splice(0)) await runtime.stop();
  });
  return (options) => {
    const runtime = createRuntime({
      store: memoryStore(),
      logger: captureLogger(),
      shutdownGrace: 0,
      ...options,
    });
    runtimes.push(runtime);
    return runtime;
  };
}
