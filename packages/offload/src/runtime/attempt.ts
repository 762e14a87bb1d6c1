import { isInstance } from '../errors/is-instance.js';
import { PermanentError } from '../errors/permanent.js';
import { retryLaterDelay } from '../errors/retry-later.js';
import type { ClaimedTask, Settlement } from '../store/store.js';
import { toTaskError } from '../store/stored-error.js';
import { encodeJson } from '../json.js';
import type { Json, Logger } from '../types.js';
import type { Span } from '@opentelemetry/api';
import type { TaskContext } from './define-task.js';
import { logWithError } from './log-listener.js';
import type { ProgressReports } from './progress.js';
import type { Tracing } from './tracing.js';
import { retryDelay, type Backoff } from './retry-policy.js';

/** One attempt of one task in this process. */
export class Attempt {
  timer: NodeJS.Timeout | undefined;
  /** Its place in `RunningAttempts`. */
  slot = -1;
  /** Set once the attempt's outcome is decided; anything the handler does later is ignored. */
  done = false;
  /** performance.now() when it started. */
  readonly started = performance.now();
  /** What it last reported with `ctx.progress`, as JSON text. */
  progress: string | undefined = undefined;
  /** The progress `task:progress` listeners were last told of. */
  progressShown: string | undefined = undefined;
  /** Its span, when tracing made one. */
  span: Span | undefined = undefined;
  private controller: AbortController | undefined;
  private abortReason: unknown;

  constructor(readonly task: ClaimedTask) {}

  /** Made on first use: most tasks never look at their signal, and a controller per task costs. */
  get signal(): AbortSignal {
    if (this.controller) return this.controller.signal;
    if (this.abortReason !== undefined) return AbortSignal.abort(this.abortReason);
    return (this.controller = new AbortController()).signal;
  }

  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}

export class Context implements TaskContext {
  private scopedLogger: Logger | undefined;

  constructor(
    private readonly current: Attempt,
    private readonly parentLogger: Logger,
    private readonly reports: ProgressReports,
    private readonly tracing: Tracing | null,
  ) {}

  get taskId(): string {
    return this.current.task.id;
  }

  get name(): string {
    return this.current.task.name;
  }

  get attempt(): number {
    return this.current.task.attempts;
  }

  get maxAttempts(): number {
    return this.current.task.maxAttempts;
  }

  get signal(): AbortSignal {
    return this.current.signal;
  }

  /** Made on first use: most tasks never log. */
  get logger(): Logger {
    return (this.scopedLogger ??= new AttemptLogger(this.current.task, this.parentLogger));
  }

  get traceparent(): string | null {
    return this.tracing?.traceparent(this.current.span) ?? null;
  }

  progress(value: Json): void {
    this.reports.report(this.current, value);
  }
}

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * A task's logger: lines carry its id, name and attempt. The child logger that adds them is made
 * on the first line actually written, so lines below the log level (the demo notification logs at info,
 * the service runs at warn in production) cost no child per attempt.
 */
class AttemptLogger implements Logger {
  private scoped: Logger | undefined;

  constructor(
    private readonly task: ClaimedTask,
    private readonly parent: Logger,
  ) {}

  debug(obj: object, msg?: string): void {
    this.write('debug', obj, msg);
  }

  info(obj: object, msg?: string): void {
    this.write('info', obj, msg);
  }

  warn(obj: object, msg?: string): void {
    this.write('warn', obj, msg);
  }

  error(obj: object, msg?: string): void {
    this.write('error', obj, msg);
  }

  child(bindings: Record<string, unknown>): Logger {
    return this.target().child(bindings);
  }

  isLevelEnabled(level: string): boolean {
    return this.parent.isLevelEnabled?.(level) ?? true;
  }

  private write(level: Level, obj: object, msg: string | undefined): void {
    if (this.isLevelEnabled(level)) this.target()[level](obj, msg);
  }

  private target(): Logger {
    const { task } = this;
    return (this.scoped ??= this.parent.child({
      taskId: task.id,
      task: task.name,
      attempt: task.attempts,
    }));
  }
}

/** What an attempt's `run` resolved to. */
export class Success {
  private static readonly EMPTY = new Success(undefined);

  private constructor(readonly value: unknown) {}

  /** Most tasks return nothing: they share one instance. */
  static of(value: unknown): Success {
    return value === undefined ? Success.EMPTY : new Success(value);
  }
}

/**
 * Records a success with what `run` returned. A value that is not JSON is not stored (the task
 * still succeeded: failing it would run its side effects again); a warning says why.
 */
export function successSettlement(
  task: ClaimedTask,
  { value }: Success,
  now: number,
  logger: Logger,
): Settlement {
  const settlement: Settlement = { id: task.id, lease: task.lease, state: 'succeeded', at: now };
  if (value === undefined) return settlement;
  try {
    settlement.result = encodeJson(value, 'result');
  } catch (error) {
    logWithError(
      logger,
      'warn',
      { taskId: task.id, task: task.name },
      error,
      'the task succeeded, but what it returned is not JSON and was not stored; return plain data',
    );
  }
  return settlement;
}

/**
 * What a failed attempt leads to, per the retry policy and the error's class. Never throws,
 * whatever the task threw.
 */
export function failureSettlement(
  task: ClaimedTask,
  error: unknown,
  now: number,
  backoff: Required<Backoff>,
  random: number,
): Settlement {
  const record = toTaskError(error, task.attempts, now);
  const base = { id: task.id, lease: task.lease, at: now, error: record };
  const delay = retryLaterDelay(error);
  if (delay !== null) {
    return { ...base, state: 'queued', runAt: now + delay, refund: true };
  }
  if (isInstance(error, PermanentError) || task.attempts >= task.maxAttempts) {
    return { ...base, state: 'failed' };
  }
  return { ...base, state: 'queued', runAt: now + retryDelay(task.attempts, backoff, random) };
}

/** Brings a settled outcome onto the in-memory task that events carry. */
export function applySettlement(task: ClaimedTask, settlement: Settlement): void {
  task.state = settlement.state;
  if (settlement.error) task.errors.push(settlement.error);
  if (settlement.refund) task.attempts -= 1;
  if (settlement.result !== undefined) task.result = JSON.parse(settlement.result) as Json;
  if (settlement.progress !== undefined) task.progress = JSON.parse(settlement.progress) as Json;
  if (settlement.state === 'queued') task.runAt = new Date(settlement.runAt ?? settlement.at);
  else task.finishedAt = new Date(settlement.at);
}
