import { isInstance } from '../errors/is-instance.js';
import { PermanentError } from '../errors/permanent.js';
import { throttles } from '../errors/retry-later.js';
import { TaskAbortedError, type AbortReason } from '../errors/task-aborted.js';
import { TaskTimeoutError } from '../errors/task-timeout.js';
import type { ClaimedTask, Lease, Settlement, Store } from '../store/store.js';
import {
  applySettlement,
  Attempt,
  Context,
  failureSettlement,
  Success,
  successSettlement,
} from './attempt.js';
import { Batcher } from './batcher.js';
import type { TaskDefinition } from './define-task.js';
import type { Events } from './events.js';
import { logWithError } from './log-listener.js';
import type { Settings } from './options.js';
import { parseStored } from './payload-schema.js';
import { ProgressReports } from './progress.js';
import type { Backoff } from './retry-policy.js';
import { RunningAttempts } from './running.js';
import { runInThread } from './thread.js';
import type { AttemptOutcome, Tracing } from './tracing.js';

/**
 * Most outcomes one write takes; the rest go from the next turn, so that requests wait less. More
 * than a worker's claim takes (see Prefetch): each write is a commit that waits for the disk, so a
 * drain of short tasks settles the outcomes of a claim or more in one.
 */
const SETTLE_BATCH = 1000;
/**
 * Shortest time between two writes of outcomes, in ms. After a quiet moment an outcome is written
 * at once; those that follow within that time share the next write (at 2,000 tasks/s, about ten
 * per write rather than one each), and show (and fire their events) up to that much later.
 */
const SETTLE_COOLDOWN = 5;

/** What the settler needs of the runtime it records outcomes for. */
export interface SettlingRuntime {
  /** An attempt's slot was freed: another task may start. */
  freed(): void;
  /** A task is due again at `at` (a retry). */
  due(name: string, at: number): void;
  /** Whether an outcome the store failed to take is tried again later, rather than on stop. */
  retries(): boolean;
}

/**
 * Runs claimed tasks and records their outcomes: decides each attempt's outcome once (success,
 * failure per the retry policy, timeout), writes the outcomes in batches, and keeps those the
 * store failed to take, with their leases, to try again.
 */
export class Settler {
  /** Attempts running here. */
  private readonly running = new RunningAttempts();
  /** Outcomes the store did not take yet (it failed); retried, and their leases kept. */
  private readonly unsettled = new Map<string, Settlement>();
  private readonly settlements: Batcher<Settlement, boolean>;
  /** Each definition's backoff, merged over the runtime's. */
  private readonly backoffs = new Map<string, Required<Backoff>>();
  private noneRunningWaiters: (() => void)[] = [];
  private readonly progress: ProgressReports;

  constructor(
    private readonly store: Store,
    private readonly settings: Settings,
    private readonly events: Events,
    private readonly runtime: SettlingRuntime,
    private readonly tracing: Tracing | null,
  ) {
    for (const [name, definition] of settings.tasks) {
      this.backoffs.set(name, { ...settings.backoff, ...definition.backoff });
    }
    this.settlements = new Batcher((outcomes) => this.store.settle(outcomes), {
      cooldown: SETTLE_COOLDOWN,
      maxBatch: SETTLE_BATCH,
    });
    this.progress = new ProgressReports(store, settings, events);
  }

  /** How many attempts run here. */
  get size(): number {
    return this.running.size;
  }

  /** The leases this process holds: running tasks, and outcomes not stored yet. */
  leases(): Lease[] {
    const leases: Lease[] = [];
    for (const { task } of this.running) leases.push({ id: task.id, lease: task.lease });
    for (const { id, lease } of this.unsettled.values()) leases.push({ id, lease });
    return leases;
  }

  /** Starts an attempt of a claimed task; its outcome is recorded when it ends or times out. */
  run(task: ClaimedTask): void {
    const definition = this.settings.tasks.get(task.name);
    const attempt = new Attempt(task);
    this.running.add(attempt);
    if (this.events.has('task:start')) this.events.emit('task:start', { task });
    if (task.payloadError !== null)
      return this.finish(attempt, new PermanentError(task.payloadError));
    // Claims ask for registered names only; a store that reads a name back changed must not
    // leave the attempt, and the others of its claim, unfinished.
    if (definition === undefined) {
      return this.finish(
        attempt,
        new PermanentError(`no task named ${JSON.stringify(task.name)} is defined in this process`),
      );
    }
    const timeout = task.timeout ?? definition.timeout ?? this.settings.timeout;
    attempt.timer = setTimeout(() => this.finish(attempt, new TaskTimeoutError(timeout)), timeout);
    if (this.tracing !== null) attempt.span = this.tracing.process(task);
    let result: unknown;
    // Inside the try, too: reading `then` of what `run` returned may throw (a revoked Proxy).
    try {
      result =
        attempt.span === undefined
          ? this.invoke(attempt, definition)
          : this.tracing!.within(attempt.span, () => this.invoke(attempt, definition));
      if (isThenable(result)) {
        result.then(
          (value) => this.finish(attempt, Success.of(value)),
          (error: unknown) => this.finish(attempt, error),
        );
        return;
      }
    } catch (error) {
      return this.finish(attempt, error);
    }
    this.finish(attempt, Success.of(result));
  }

  /** Calls the definition's `run` (in a thread, for `isolate: 'thread'`); returns what it did. */
  private invoke(attempt: Attempt, definition: TaskDefinition<unknown>): unknown {
    const { task } = attempt;
    if (definition.isolate === 'thread') {
      // The thread checks the payload against the schema of the definition it loads.
      const traceparent = this.tracing?.traceparent(attempt.span) ?? null;
      return runInThread(
        definition.module!,
        attempt,
        this.settings.logger,
        this.progress,
        traceparent,
      );
    }
    if (definition.schema === undefined) return definition.run(task.payload, this.context(attempt));
    const parsed = parseStored(definition, task.payload);
    // An async schema may answer after the attempt timed out: it does not start then.
    return isThenable(parsed)
      ? parsed.then(({ value }) =>
          attempt.done ? undefined : definition.run(value, this.context(attempt)),
        )
      : definition.run(parsed.value, this.context(attempt));
  }

  /** Stops an attempt here without an outcome of its own: canceled, or its lease lost. */
  abandon(id: string, reason: AbortReason): void {
    const attempt = this.running.get(id);
    if (attempt) this.abandonAttempt(attempt, reason);
  }

  /** On stop: aborts the attempts still running and hands their tasks back to the queue. */
  handBack(): void {
    for (const attempt of [...this.running]) this.abandonAttempt(attempt, 'shutdown');
  }

  /** On stop: hands tasks claimed but never started back to the queue, their attempt unused. */
  handBackUnstarted(tasks: readonly ClaimedTask[]): void {
    const now = this.settings.clock.now();
    for (const task of tasks) {
      const settlement: Settlement = handedBack(task, now);
      this.settle(settlement, () => {
        applySettlement(task, settlement);
        this.events.emit('task:release', { task });
      });
    }
  }

  /** Resolves once no attempt runs here, or after `timeout` ms. */
  noneRunning(timeout?: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.noneRunningWaiters.push(resolve);
      if (timeout !== undefined) setTimeout(resolve, timeout).unref();
    });
  }

  /** Resolves once every outcome decided so far has been written (or has failed to). */
  flushed(): Promise<void> {
    return this.settlements.flushed();
  }

  /**
   * On stop: stores the outcomes that failed to store before, once more. If the store still
   * cannot take them (a full disk, say), nothing is lost: their tasks stay `running` under this
   * worker and run again once rescued. That is reported, with their ids, and does not fail the
   * stop: the process can still exit cleanly.
   */
  async settleRemaining(): Promise<void> {
    await this.progress.stop();
    await this.settlements.flushed();
    if (this.unsettled.size === 0) return;
    const outcomes = [...this.unsettled.values()];
    try {
      await this.store.settle(outcomes);
    } catch (error) {
      logWithError(
        this.settings.logger,
        'warn',
        { count: outcomes.length, taskIds: outcomes.map(({ id }) => id) },
        error,
        `could not hand back or store the outcome of ${outcomes.length} tasks before stopping: the store did not take them. They stay running under worker ${this.settings.owner} and run again once rescued, when a process next starts on this store or their leases expire`,
      );
      return;
    }
    this.unsettled.clear();
    this.settings.logger.info(
      { count: outcomes.length },
      'stored task results that had failed to store before',
    );
  }

  /** Decides an attempt's outcome once; a late result after a timeout or hand-back is ignored. */
  private finish(attempt: Attempt, outcome: unknown): void {
    const { task } = attempt;
    if (attempt.done) {
      this.settings.logger.debug(
        { taskId: task.id, task: task.name },
        'ignored the late result of an attempt that was already settled',
      );
      return;
    }
    this.release(attempt);
    if (isInstance(outcome, TaskTimeoutError)) attempt.abort(outcome);
    const now = this.settings.clock.now();
    const duration = performance.now() - attempt.started;
    const settlement: Settlement = isInstance(outcome, Success)
      ? successSettlement(task, outcome, now, this.settings.logger)
      : failureSettlement(
          task,
          outcome,
          now,
          this.backoffs.get(task.name)!,
          this.settings.random(),
        );
    this.progress.end(attempt, settlement);
    if (attempt.span !== undefined) this.traced(attempt, settlement, outcome);
    if (settlement.state === 'queued' && task.group !== null && throttles(outcome))
      this.throttle(task, settlement.runAt!);
    this.settle(settlement, () => {
      this.progress.stored(attempt, settlement);
      // A slot of the key is free in the store now: this process may take the key's next task.
      if (task.group?.concurrency != null) this.runtime.due(task.name, now);
      if (isInstance(outcome, Success)) {
        if (!this.events.has('task:success')) return;
        applySettlement(task, settlement);
        return this.events.emit('task:success', { task, duration });
      }
      applySettlement(task, settlement);
      const retryAt = settlement.state === 'queued' ? task.runAt : null;
      this.events.emit('task:error', { task, error: outcome, duration, retryAt });
      if (retryAt) {
        this.events.emit('task:retry', { task, error: outcome, retryAt });
        this.runtime.due(task.name, retryAt.getTime());
      } else {
        this.events.emit('task:failed', { task, error: outcome });
      }
    });
  }

  private context(attempt: Attempt): Context {
    return new Context(attempt, this.settings.logger, this.progress, this.tracing);
  }

  /**
   * Holds back every task of the attempt's group key until `until`, in every process: written
   * along with the attempt's outcome, which queues the task itself for then.
   */
  private throttle(task: ClaimedTask, until: number): void {
    const key = task.group!.key;
    this.store.throttle(key, until).then(
      () =>
        this.settings.logger.info(
          { taskId: task.id, task: task.name, group: key, until: new Date(until).toISOString() },
          'a task throttled its group key: none of its tasks start before then',
        ),
      (error: unknown) =>
        this.events.emit('runtime:error', { error, during: `throttling the group key ${key}` }),
    );
  }

  /** Frees the attempt's slot; the next task may start from the next turn. */
  private release(attempt: Attempt): void {
    attempt.done = true;
    clearTimeout(attempt.timer);
    this.running.delete(attempt);
    if (this.running.size === 0) {
      const waiters = this.noneRunningWaiters;
      this.noneRunningWaiters = [];
      for (const resolve of waiters) resolve();
    }
    this.runtime.freed();
  }

  /** Ends the attempt's span with its outcome. */
  private traced(attempt: Attempt, settlement: Settlement, outcome: unknown): void {
    if (isInstance(outcome, Success)) return this.tracing!.processed(attempt.span!, 'succeeded');
    const ending: AttemptOutcome = settlement.state === 'queued' ? 'retry' : 'failed';
    this.tracing!.processed(attempt.span!, ending, outcome);
  }

  private abandonAttempt(attempt: Attempt, reason: AbortReason): void {
    this.release(attempt);
    attempt.abort(new TaskAbortedError(reason));
    if (attempt.span !== undefined) this.tracing!.processed(attempt.span, reason);
    if (reason !== 'shutdown') return this.progress.end(attempt);
    const { task } = attempt;
    const settlement = handedBack(task, this.settings.clock.now());
    this.progress.end(attempt, settlement);
    this.settle(settlement, () => {
      this.progress.stored(attempt, settlement);
      applySettlement(task, settlement);
      this.events.emit('task:release', { task });
    });
  }

  /** Writes an outcome; when the store fails, keeps it (and its lease) and tries again later. */
  private settle(settlement: Settlement, onApplied: () => void): void {
    this.settlements.add(
      settlement,
      (applied) => {
        this.unsettled.delete(settlement.id);
        if (applied) onApplied();
        else
          this.settings.logger.debug(
            { taskId: settlement.id },
            'a result was not stored: the task was canceled or its lease was taken over',
          );
      },
      (error: unknown) => {
        this.events.emit('runtime:error', {
          error,
          during: `storing the result of task ${settlement.id}`,
        });
        this.unsettled.set(settlement.id, settlement);
        if (this.runtime.retries())
          setTimeout(() => this.settle(settlement, onApplied), this.settings.pollInterval).unref();
      },
    );
  }
}

/** The outcome that puts a task back in the queue, due now, without using up its attempt. */
function handedBack(task: Lease, now: number): Settlement {
  return { id: task.id, lease: task.lease, state: 'queued', at: now, runAt: now, refund: true };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
