import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  durationOption,
  integerOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import type { Json, Logger } from '../types.js';
import { checkSchema } from './payload-schema.js';
import { checkGroupOption, type GroupOption } from './groups.js';
import { checkBackoff, type Backoff } from './retry-policy.js';

/** What a task's `run` gets besides its payload. */
export interface TaskContext {
  taskId: string;
  name: string;
  /** 1 for the first run. */
  attempt: number;
  maxAttempts: number;
  /**
   * Aborted when the attempt times out, the task is canceled, its lease is lost or the runtime
   * hands it back on shutdown. Pass it on to `fetch` and friends; `signal.reason` says why.
   */
  signal: AbortSignal;
  /** A logger bound to this task's id, name and attempt. */
  logger: Logger;
  /**
   * Records how far the task got, shown as `task.progress` and told to `task:progress`
   * listeners: any JSON value, up to MAX_PROGRESS_LENGTH characters as JSON, such as
   * `{ done: 40, total: 100 }`. Cheap to call on every item: the latest value is written at most
   * once a second, and with the attempt's outcome. Throws an `InvalidPayloadError` for a value
   * that is not JSON or is too large.
   */
  progress(value: Json): void;
  /**
   * The W3C `traceparent` to send with a call this attempt makes, for receivers to continue its
   * trace: that of the active span (the attempt's, or one the task started). Null when tracing is
   * off or nothing records. Instrumented HTTP clients send it by themselves (docs/tracing.md).
   */
  readonly traceparent: string | null;
}

/** The durable identity of a task (its `name`), the code that runs it and its policy. */
export interface TaskDefinition<P = unknown> {
  /** Stored with every task: renaming a definition orphans the tasks already queued under the old name. */
  name: string;
  /** Runs one attempt. Resolve to succeed; throw to fail the attempt (see the error classes). */
  run(payload: P, ctx: TaskContext): unknown;
  /**
   * A Standard Schema (Zod 4, Valibot 1, ArkType 2, …) of the payload; with `defineTask`, it gives
   * the payload its types. `enqueue` (and `request.background.add`) check the payload against it
   * and refuse one that does not match with an `InvalidPayloadError` naming each path; the payload
   * is stored as given. Before each attempt, the stored payload is checked again and `run` gets the
   * schema's output (defaults filled in, values transformed); a stored payload that no longer
   * matches fails the task for good, with a `PermanentError` that says why.
   */
  schema?: StandardSchemaV1;
  /** Attempts before the task fails for good; default the runtime's (5). */
  maxAttempts?: number;
  /** Timeout of one attempt, in ms; default the runtime's (60 s). */
  timeout?: number;
  /** Higher runs first; default 0. */
  priority?: number;
  backoff?: Backoff;
  /**
   * The group its tasks count in, with the key's limits (concurrency, rate), or a function that
   * chooses it from the payload (null: no group). An enqueue's `group` overrides it.
   */
  group?: GroupOption<P>;
  /**
   * `'thread'`: run each attempt in a worker thread of its own, which the runtime terminates at
   * the attempt's timeout, on cancel and on shutdown — for CPU-bound work, or code that may block
   * or ignore its signal. The thread loads `module` and calls the `run` of the definition it
   * exports under this name; payload and result cross by structured clone, `ctx.logger` works,
   * and `ctx.signal` never aborts (the thread is ended instead).
   */
  isolate?: 'thread';
  /** With `isolate: 'thread'`: the module that exports this definition; pass `import.meta.url`. */
  module?: string;
}

export const MAX_ATTEMPTS_LIMIT = 1000;
const definitionKeys = [
  'name',
  'run',
  'maxAttempts',
  'timeout',
  'priority',
  'backoff',
  'group',
  'isolate',
  'module',
  'schema',
];

/**
 * The payload `enqueue` takes for `T`, a definition or a task's name: the input type of the
 * definition's `schema` (what the schema accepts: a field with a default may be left out), or
 * else the payload its `run` takes; anything for a name.
 */
export type PayloadOf<T> = T extends string
  ? unknown
  : T extends { readonly schema: infer S extends StandardSchemaV1 }
    ? StandardSchemaV1.InferInput<S>
    : T extends TaskDefinition<infer P>
      ? P
      : never;

/**
 * Declares a task. With a `schema`, the payload's types come from it: `run` gets the schema's
 * output, and `enqueue` takes its input (see `PayloadOf`). Without one, the payload type is yours
 * to give. Payloads must be JSON either way.
 */
export function defineTask<S extends StandardSchemaV1>(
  definition: TaskDefinition<StandardSchemaV1.InferOutput<S>> & { schema: S },
): TaskDefinition<StandardSchemaV1.InferOutput<S>> & { readonly schema: S };
export function defineTask<P = unknown>(definition: TaskDefinition<P>): TaskDefinition<P>;
export function defineTask(definition: TaskDefinition<unknown>): TaskDefinition<unknown> {
  checkDefinition(definition);
  return Object.freeze({ ...definition });
}

export function checkDefinition(definition: TaskDefinition<never>): void {
  if (definition === null || typeof definition !== 'object') {
    throw new InvalidOptionError('task', 'must be an object made by defineTask({ name, run })');
  }
  const where = `task ${JSON.stringify(definition.name)}`;
  rejectUnknownKeys(where, definition, definitionKeys);
  checkTaskName(definition.name);
  if (typeof definition.run !== 'function') {
    throw new InvalidOptionError(
      `${where}.run`,
      'must be a function (payload, ctx) => Promise<void>',
    );
  }
  if (definition.maxAttempts !== undefined) {
    integerOption(`${where}.maxAttempts`, definition.maxAttempts, 1, MAX_ATTEMPTS_LIMIT);
  }
  if (definition.timeout !== undefined) durationOption(`${where}.timeout`, definition.timeout);
  if (definition.priority !== undefined)
    integerOption(`${where}.priority`, definition.priority, -1000, 1000);
  if (definition.backoff !== undefined) checkBackoff(`${where}.backoff`, definition.backoff);
  if (definition.schema !== undefined) checkSchema(where, definition.schema);
  if (definition.group !== undefined) checkGroupOption(`${where}.group`, definition.group);
  checkIsolation(where, definition);
}

function checkIsolation(where: string, { isolate, module }: TaskDefinition<never>): void {
  if (isolate === undefined) {
    if (module !== undefined)
      throw new InvalidOptionError(`${where}.module`, "is only used with isolate: 'thread'");
    return;
  }
  if (isolate !== 'thread')
    throw new InvalidOptionError(
      `${where}.isolate`,
      `must be 'thread', got ${JSON.stringify(isolate)}`,
    );
  if (typeof module !== 'string' || !module.startsWith('file:')) {
    throw new InvalidOptionError(
      `${where}.module`,
      'must be the file: URL of the module that exports this definition, so that its thread can load it: pass import.meta.url',
    );
  }
}

/**
 * Whether `name` may name a task: 1 to 200 characters, no leading or trailing space, no control
 * character (names go into logs and metrics), and well-formed UTF-16 (SQLite stores an unpaired
 * surrogate as another name, and PostgreSQL refuses it and NUL).
 */
export function isTaskName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= 200 &&
    name.trim() === name &&
    !CONTROL.test(name) &&
    name.isWellFormed()
  );
}

const CONTROL = /\p{Cc}/u;

export function checkTaskName(name: unknown): asserts name is string {
  if (!isTaskName(name)) {
    throw new InvalidOptionError(
      'task name',
      `must be a string of 1 to 200 characters without leading or trailing spaces, control characters or unpaired surrogates, got ${JSON.stringify(name)}`,
    );
  }
}

/**
 * Whether every store can hold `text` as it is: PostgreSQL refuses NUL and unpaired surrogates,
 * and SQLite reads an unpaired surrogate back as U+FFFD.
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\0') && text.isWellFormed();
}
