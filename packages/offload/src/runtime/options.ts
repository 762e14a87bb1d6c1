import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { pino } from 'pino';
import {
  definedOnly,
  durationOption,
  integerOption,
  MAX_DURATION,
  MAX_TIMER_DELAY,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import type { Store } from '../store/store.js';
import { DAY, MINUTE, SECOND, systemClock, type Clock } from '../time.js';
import type { Logger } from '../types.js';
import { checkDefinition, MAX_ATTEMPTS_LIMIT, type TaskDefinition } from './define-task.js';
import { checkBackoff, type Backoff } from './retry-policy.js';

export interface RuntimeOptions {
  /** Where tasks live. The runtime opens it, and closes it when it stops. */
  store: Store;
  /** The tasks this process runs; `enqueue` takes only these as definitions. Others are enqueued by name, and wait for a process that runs them. */
  tasks?: readonly TaskDefinition<never>[];
  /** Tasks run at once in this process. Default 100: tasks mostly wait on I/O; lower it for CPU-bound ones. */
  concurrency?: number;
  /** Default timeout of one attempt, in ms. Default 60 s, as FastAPI's request timeout. */
  timeout?: number;
  /** Default attempts before a task fails for good. Default 5. */
  maxAttempts?: number;
  /** Default retry backoff: 2 s doubling to at most 1 h, with 20% jitter. */
  backoff?: Backoff;
  /** On stop, how long running tasks may finish before they are aborted and handed back, in ms. Default 25 s. */
  shutdownGrace?: number;
  /** How often to look for due tasks, and for schedules other processes set, when nothing woke the runtime, in ms. Default 1 s. */
  pollInterval?: number;
  /** A claimed task's lease, renewed while it runs, in ms. Default 30 s. */
  leaseDuration?: number;
  /** How often to look for tasks of dead processes and expired leases, in ms. Default 2 s. */
  rescueInterval?: number;
  /** How long finished tasks are kept, in ms. Default 7 days. */
  retention?: number;
  /** How often finished tasks past `retention` are deleted, in ms. Default 10 min. */
  pruneInterval?: number;
  /** Default: pino at level `info`. */
  logger?: Logger;
  /** Default: the system clock. Tests pass a fake one. */
  clock?: Clock;
  /** Source of jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  /** This process's name on the leases it takes; default host-pid-random. Letters, digits, `.`, `_`, `-`. */
  owner?: string;
  /**
   * Traces with OpenTelemetry when `@opentelemetry/api` is installed: a span per enqueue and per
   * attempt, sent to the tracer provider registered globally, and each task's `trace` stored
   * (docs/tracing.md). Without the package, or with no tracer provider, nothing is traced or
   * stored. Default true; false turns tracing off.
   */
  tracing?: boolean;
}

export type Settings = Required<Omit<RuntimeOptions, 'tasks' | 'backoff'>> & {
  backoff: Required<Backoff>;
  tasks: Map<string, TaskDefinition<unknown>>;
};

const defaults = {
  concurrency: 100,
  timeout: 60 * SECOND,
  maxAttempts: 5,
  shutdownGrace: 25 * SECOND,
  pollInterval: SECOND,
  leaseDuration: 30 * SECOND,
  rescueInterval: 2 * SECOND,
  retention: 7 * DAY,
  pruneInterval: 10 * MINUTE,
  tracing: true,
};

const knownKeys = [
  ...Object.keys(defaults),
  'store',
  'tasks',
  'backoff',
  'logger',
  'clock',
  'random',
  'owner',
];

/** Merges the defaults in and checks every option once, naming the one that is wrong. */
export function resolveOptions(options: RuntimeOptions): Settings {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('options', 'must be an object with at least { store }');
  }
  rejectUnknownKeys('options', options, knownKeys);
  const merged = { ...defaults, ...definedOnly(options) };
  const store = merged.store;
  if (!store || typeof store.claim !== 'function') {
    throw new InvalidOptionError(
      'options.store',
      'must be a store, e.g. sqliteStore({ path }) or memoryStore()',
    );
  }
  integerOption('options.concurrency', merged.concurrency, 1, 10_000);
  integerOption('options.maxAttempts', merged.maxAttempts, 1, MAX_ATTEMPTS_LIMIT);
  for (const key of [
    'timeout',
    'shutdownGrace',
    'pollInterval',
    'leaseDuration',
    'rescueInterval',
    'retention',
    'pruneInterval',
  ] as const) {
    // Retention is no timer's delay: it may be longer than a timer takes.
    const max = key === 'retention' ? MAX_DURATION : MAX_TIMER_DELAY;
    durationOption(`options.${key}`, merged[key], key === 'shutdownGrace' ? 0 : 1, max);
  }
  if (typeof merged.tracing !== 'boolean') {
    throw new InvalidOptionError(
      'options.tracing',
      `must be true or false, got ${JSON.stringify(merged.tracing)}`,
    );
  }
  const owner = options.owner ?? defaultOwner();
  if (typeof owner !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(owner)) {
    throw new InvalidOptionError(
      'options.owner',
      `must be 1 to 100 letters, digits, ".", "_" or "-", got ${JSON.stringify(owner)}`,
    );
  }
  if (options.tasks !== undefined && !Array.isArray(options.tasks)) {
    throw new InvalidOptionError(
      'options.tasks',
      'must be an array of definitions made by defineTask(), e.g. tasks: [sendWelcome]',
    );
  }
  const tasks = new Map<string, TaskDefinition<unknown>>();
  for (const definition of options.tasks ?? []) {
    checkDefinition(definition);
    if (tasks.has(definition.name)) {
      throw new InvalidOptionError(
        'options.tasks',
        `two definitions are named ${JSON.stringify(definition.name)}`,
      );
    }
    tasks.set(definition.name, definition as TaskDefinition<unknown>);
  }
  return {
    ...merged,
    store,
    tasks,
    owner,
    backoff: checkBackoff('options.backoff', options.backoff ?? {}),
    // `console` is the likely mistake: it has no child(), which names each task in its lines.
    logger:
      checkMethods('options.logger', options.logger, LOGGER_METHODS, ', as a pino logger has') ??
      pino({ name: 'offload' }),
    clock: checkMethods('options.clock', options.clock, ['now']) ?? systemClock,
    random: checkFunction('options.random', options.random) ?? Math.random,
  };
}

const LOGGER_METHODS = ['debug', 'info', 'warn', 'error', 'child'];

/** `value`, when it is undefined or has every one of `methods`; else an error naming the others. */
function checkMethods<T>(option: string, value: T, methods: string[], example = ''): T {
  if (value === undefined) return value;
  const missing = methods.filter(
    (method) => typeof (value as Record<string, unknown> | null)?.[method] !== 'function',
  );
  if (missing.length > 0) {
    throw new InvalidOptionError(
      option,
      `must have ${calls(methods)}${example}; it has no ${calls(missing)}`,
    );
  }
  return value;
}

function calls(methods: string[]): string {
  return methods.map((method) => `${method}()`).join(', ');
}

function checkFunction<T>(option: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') {
    throw new InvalidOptionError(option, `must be a function, got ${typeof value}`);
  }
  return value;
}

function defaultOwner(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .slice(0, 60);
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
