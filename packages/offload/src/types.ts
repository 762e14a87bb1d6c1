/** The public types of Offload. */

export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export const TASK_STATES: readonly TaskState[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'canceled',
];

/** A state a task never leaves by itself. */
export function isFinished(state: TaskState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'canceled';
}

/** A value that survives `JSON.stringify` and `JSON.parse` unchanged. Payloads are Json. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One failed attempt, as recorded on the task. */
export interface TaskError {
  /** The attempt that failed (1 for the first run). */
  attempt: number;
  at: Date;
  /** The error's class name, e.g. `TypeError` or `TaskTimeoutError`. */
  name: string;
  message: string;
  /** The stack, cut to a few kilobytes; null when the thrown value had none. */
  stack: string | null;
}

/** One stored execution request. */
export interface Task<P = Json> {
  id: string;
  name: string;
  payload: P;
  state: TaskState;
  /** Higher runs first. */
  priority: number;
  /** Attempts started so far; an attempt handed back on shutdown is not counted. */
  attempts: number;
  maxAttempts: number;
  /** Timeout of one attempt in milliseconds; null means the definition's or the runtime's. */
  timeout: number | null;
  /** The de-duplication key given at enqueue, if any. */
  key: string | null;
  /** The group the task counts in, with its limits, or null (see docs/limits.md). */
  group: TaskGroup | null;
  /** When the task may run next: in the future while it waits for a retry or a delay. */
  runAt: Date;
  createdAt: Date;
  /** When its latest attempt started. */
  startedAt: Date | null;
  /** When it reached `succeeded`, `failed` or `canceled`. */
  finishedAt: Date | null;
  /** The most recent failed attempts, oldest first (at most ten are kept). */
  errors: TaskError[];
  /** What `run` returned, once the task succeeded; null before, or when it returned nothing. */
  result: Json | null;
  /**
   * How far the task got, as its `run` last reported with `ctx.progress`; null until it reports.
   * Kept once the task finishes, and from one attempt to the next until the new one reports.
   */
  progress: Json | null;
  /**
   * The W3C `traceparent` of the span that enqueued the task, when tracing was on and a span was
   * recording (see docs/tracing.md); each attempt's span continues that trace. Null otherwise.
   */
  trace: string | null;
}

/** Options of one enqueue. Each one overrides the task definition's. */
export interface EnqueueOptions {
  /** Run no earlier than this many milliseconds from now. */
  delay?: number;
  /** Run no earlier than this moment. Give `delay` or `runAt`, not both. */
  runAt?: Date;
  /** Higher runs first; default 0. */
  priority?: number;
  maxAttempts?: number;
  /** Timeout of one attempt in milliseconds. */
  timeout?: number;
  /**
   * De-duplication key: while a task with this key is stored (until it is pruned), enqueueing
   * another one with the same key returns the stored task instead of adding one.
   */
  key?: string;
  /** The group the task counts in, with its limits; overrides the definition's `group`. */
  group?: GroupOptions;
  /**
   * PostgreSQL only: a node-postgres client inside your open transaction. The task is written in
   * that transaction: it exists, and runs, only if you commit.
   */
  transaction?: SqlClient;
  /**
   * A W3C `traceparent` to continue when no span is active, e.g. the header of the request that
   * enqueues (the adapters pass it on). Ignored while a span is active, and when tracing is off.
   */
  traceparent?: string;
}

/**
 * Tasks that share a group key share its limits, across every process on the store: at most
 * `concurrency` of them run at once, and at most `rate.max` start per `rate.period` ms. A handler
 * can throttle its whole key (`RetryLaterError` with `throttle: true`).
 */
export interface GroupOptions {
  /** 1 to 500 characters, e.g. `tenant:42` or `smtp:mail1`. */
  key: string;
  /** Most tasks of the key running at once; default no limit. */
  concurrency?: number;
  /** Most starts of the key's tasks per `period` ms; default no limit. */
  rate?: { max: number; period: number };
}

/** A task's group as stored: absent limits are null. */
export interface TaskGroup {
  key: string;
  concurrency: number | null;
  rate: { max: number; period: number } | null;
}

/** A task name whose tasks are not claimed until it is resumed. */
export interface PausedName {
  name: string;
  pausedAt: Date;
}

/**
 * A connection of yours, inside your transaction: a node-postgres `Client` or `PoolClient` fits,
 * as does anything with the same `query`.
 */
export interface SqlClient {
  query<R extends object = object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface ListFilter {
  state?: TaskState;
  name?: string;
  /**
   * Only tasks whose `key` starts with this text, e.g. `order:42:` for the tasks enqueued with the
   * keys `order:42:email` and `order:42:invoice`. Meant for small groups: the matching keys are
   * read in full before the newest are returned.
   */
  keyPrefix?: string;
  /** At most this many tasks, 1 to 1000; default 50. */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

/** One page of tasks, newest first. */
export interface TaskPage {
  tasks: Task[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

/** What `runtime.stats()` reads: tasks per name and state, and the queue's lag. */
export interface TaskStats {
  /** One entry per name and state that has tasks. */
  counts: { name: string; state: TaskState; count: number }[];
  /** When the oldest due queued task was due, or null when none waits. */
  oldestDue: Date | null;
}

/** What a logger must offer: pino's loggers fit, and so does a console-free stub in tests. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
  /** Whether lines at `level` are written (pino has it); lets Offload skip work for the others. */
  isLevelEnabled?(level: string): boolean;
}
