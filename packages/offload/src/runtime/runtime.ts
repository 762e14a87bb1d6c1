import { isInstance } from '../errors/is-instance.js';
import { OffloadError } from '../errors/offload-error.js';
import { PermanentError } from '../errors/permanent.js';
import { TaskAbortedError, type AbortReason } from '../errors/task-aborted.js';
import { TaskTimeoutError } from '../errors/task-timeout.js';
import { integerOption, InvalidOptionError, rejectUnknownKeys } from '../options-check.js';
import type {
  ClaimedTask,
  EnqueueResult,
  Lease,
  NewTask,
  Settlement,
  Store,
} from '../store/store.js';
import {
  TASK_STATES,
  type EnqueueOptions,
  type ListFilter,
  type Task,
  type SqlClient,
  type TaskPage,
} from '../types.js';
import {
  applySettlement,
  Attempt,
  Context,
  failureSettlement,
  Success,
  successSettlement,
} from './attempt.js';
import { Batcher } from './batcher.js';
import { RunningAttempts } from './running.js';
import { runInThread } from './thread.js';
import { isStorableText, isTaskName, type TaskDefinition } from './define-task.js';
import { newTask } from './new-task.js';
import { Events, type Listener, type RuntimeEventName } from './events.js';
import { attachLogging, logWithError } from './log-listener.js';
import { Maintenance } from './maintenance.js';
import type { Backoff } from './retry-policy.js';
import { resolveOptions, type RuntimeOptions, type Settings } from './options.js';

/** Something to enqueue with `enqueueMany`. */
export interface TaskRequest<P = unknown> {
  task: TaskDefinition<P> | string;
  payload: P;
  options?: EnqueueOptions;
}

/**
 * Most tasks one claim takes. Claims come once per event-loop turn and synchronous tasks run
 * inside them, so this bounds the work of one turn: 50 keeps answers under a draining backlog
 * within a few ms for ~5% of drain throughput (BENCHMARKS.md).
 */
const CLAIM_BATCH = 50;
/**
 * Most tasks one claim takes while requests are answered (see SERVING_WINDOW), and most outcomes
 * one write takes (the rest go from the next turn): smaller turns, so that a request waits less
 * behind a drain. At 2,000 requests/s while 100,000 tasks drained, the p99 of the answers given
 * meanwhile was lower in each of five interleaved pairs (5.8–9.2 ms → 5.5–7.5 ms), and the drain
 * took 3.0 s instead of 2.5 s. With no requests, it drains as fast as before, within noise.
 */
const SERVING_CLAIM_BATCH = 25;
const SETTLE_BATCH = 100;
/**
 * While requests are answered, a claim also takes no more tasks than the one before says fit in
 * this many ms of the event loop (claiming them and starting them), and at least one: tasks that
 * hold the loop (or whose code V8 has not compiled yet) are claimed a few at a time. In the drain
 * above, the p99 was lower in 10 of 14 interleaved pairs (medians 5.2–5.5 ms against 5.9–6.7 ms),
 * the drain as fast; a task that holds the loop 5 ms no longer makes turns of 125 ms.
 */
const SERVING_TURN_MS = 1;
/** Until a claim has been timed: 5 tasks a turn. */
const FIRST_TASK_COST_MS = SERVING_TURN_MS / 5;
/**
 * Shortest time between two claims, in ms, unless the last one found a backlog and half the slots
 * are free: tasks that arrive one by one, or finish one by one, share a claim (one write) instead
 * of paying one each. A task that arrives within that time of the last claim starts up to that
 * much later.
 */
const CLAIM_COOLDOWN = 5;
/**
 * Shortest time between two writes of outcomes, in ms. After a quiet moment an outcome is written
 * at once; those that follow within that time share the next write (at 2,000 tasks/s, about ten
 * per write rather than one each), and show (and fire their events) up to that much later.
 */
const SETTLE_COOLDOWN = 5;
/**
 * For this long (ms) after requests were answered, a draining backlog yields to them: each claim
 * waits as long as the one before held the event loop (claiming and starting its tasks), so the
 * backlog gets about half the loop and the requests the rest. At 2,000 requests/s while 100,000
 * tasks drained, p99 went from 7.4–95 ms to 4.2–5.1 ms, p50 from 0.8–1.2 to 0.14 ms, and the drain
 * from 51,000–64,000 to 41,000–42,000 tasks/s (BENCHMARKS.md). With no requests, full speed.
 */
const SERVING_WINDOW = 100;

/**
 * Tells a runtime that the app just answered a request (offload/fastify does, for every request),
 * so that a backlog draining now shares the event loop; see SERVING_WINDOW.
 */
export const kAnsweredRequest = Symbol('offload.answeredRequest');

/**
 * Runs tasks inside this process: claims due tasks from the store, runs them with a concurrency
 * limit, renews their leases, applies timeouts and the retry policy, and hands them back on stop.
 */
export class Runtime {
  private readonly settings: Settings;
  private readonly store: Store;
  private readonly events: Events;
  private readonly names: string[];
  /** Each definition's backoff, merged over the runtime's. */
  private readonly backoffs = new Map<string, Required<Backoff>>();
  private readonly enqueues: Batcher<NewTask, EnqueueResult>;
  private readonly settlements: Batcher<Settlement, boolean>;
  /** Attempts running here. */
  private readonly running = new RunningAttempts();
  /** Outcomes the store did not take yet (it failed); retried, and their leases kept. */
  private readonly unsettled = new Map<string, Settlement>();
  private noneRunningWaiters: (() => void)[] = [];

  private opening: Promise<void> | null = null;
  private registering: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  /** The store is closed or closing: reads answer `RUNTIME_STOPPED`. */
  private closed = false;
  private started = false;
  private accepting = true;
  private drains = 0;

  private claiming: Promise<number> | null = null;
  /** False once a claim found fewer tasks than it asked for, until something wakes the runtime. */
  private moreDue = true;
  private wakeups = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private refillTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  /** performance.now() of the latest claim. */
  private lastClaim = -Infinity;
  /**
   * While requests are answered, when a draining backlog may claim again: the end of the latest
   * claim plus as long as it held the event loop (the store's call and starting its tasks).
   */
  private yieldUntil = -Infinity;
  /** How long the latest claim held the event loop per task it took, ms (see SERVING_TURN_MS). */
  private taskCost = FIRST_TASK_COST_MS;
  /** A request was answered since the runtime last looked (see kAnsweredRequest). */
  private requestAnswered = false;
  /** performance.now() when the runtime last found a request answered. */
  private lastAnswered = -Infinity;
  /** The last claim took as many tasks as it asked for: more are probably due. */
  private backlog = false;
  private wakeAt = Infinity;
  private readonly maintenance: Maintenance;

  constructor(options: RuntimeOptions) {
    this.settings = resolveOptions(options);
    this.store = this.settings.store;
    this.names = [...this.settings.tasks.keys()];
    for (const [name, definition] of this.settings.tasks) {
      this.backoffs.set(name, { ...this.settings.backoff, ...definition.backoff });
    }
    this.events = new Events((error, event) =>
      logWithError(this.settings.logger, 'error', { event }, error, 'an event listener failed'),
    );
    attachLogging(this.events, this.settings.logger);
    this.enqueues = new Batcher((tasks) => this.write(tasks));
    this.settlements = new Batcher((outcomes) => this.store.settle(outcomes), {
      cooldown: SETTLE_COOLDOWN,
      maxBatch: SETTLE_BATCH,
    });
    this.maintenance = new Maintenance(this.store, this.settings, this.events, {
      leases: () => {
        const leases: Lease[] = [];
        for (const { task } of this.running) leases.push({ id: task.id, lease: task.lease });
        for (const { id, lease } of this.unsettled.values()) leases.push({ id, lease });
        return leases;
      },
      rescued: (task) => this.wake(task.name, task.runAt.getTime()),
      leaseLost: (id) => this.abandon(id, 'lease-lost'),
    });
  }

  [kAnsweredRequest](): void {
    this.requestAnswered = true;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends RuntimeEventName>(event: E, listener: Listener<E>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Stores a task and resolves once it is committed. `task` is a definition, or the name of one
   * that another process may run. Calls made in the same event-loop turn share one transaction.
   */
  enqueue<P>(
    task: TaskDefinition<P> | string,
    payload: P,
    options?: EnqueueOptions,
  ): Promise<Task<P>> {
    return new Promise((resolve, reject) => {
      if (options?.transaction === undefined) {
        // The hot path: no copy of the options.
        const prepared = this.prepare(task, payload, options ?? {});
        return this.enqueues.add(prepared, (result) => resolve(result.task as Task<P>), reject);
      }
      const { transaction, ...rest } = options;
      this.writeIn(checkTransaction(transaction), [this.prepare(task, payload, rest)]).then(
        ([result]) => resolve(result!.task as Task<P>),
        reject,
      );
    });
  }

  /**
   * Stores several tasks in one transaction; all or none. With `transaction` (PostgreSQL), in the
   * caller's transaction, as for `enqueue`.
   */
  async enqueueMany(
    requests: readonly TaskRequest[],
    { transaction }: { transaction?: SqlClient } = {},
  ): Promise<Task[]> {
    if (!Array.isArray(requests)) {
      throw new InvalidOptionError(
        'enqueueMany requests',
        'must be an array of { task, payload, options }',
      );
    }
    const tasks = requests.map((r, i) => {
      if (typeof r !== 'object' || r === null) {
        throw new InvalidOptionError(
          `enqueueMany requests[${i}]`,
          'must be an object { task, payload, options }',
        );
      }
      return this.prepare(r.task, r.payload, r.options ?? {});
    });
    const results = await (transaction === undefined
      ? this.write(tasks)
      : this.writeIn(checkTransaction(transaction), tasks));
    return results.map((r) => r.task);
  }

  get(id: string): Promise<Task | null> {
    return this.whenOpen(() => this.store.get(id));
  }

  async list(filter: ListFilter = {}): Promise<TaskPage> {
    rejectUnknownKeys('list filter', filter, ['state', 'name', 'keyPrefix', 'limit', 'cursor']);
    const limit = integerOption('list filter.limit', filter.limit ?? 50, 1, 1000);
    const { keyPrefix, name } = filter;
    if (
      keyPrefix !== undefined &&
      (typeof keyPrefix !== 'string' || keyPrefix.length === 0 || !isStorableText(keyPrefix))
    ) {
      throw new InvalidOptionError(
        'list filter.keyPrefix',
        'must be a non-empty string without NUL or unpaired surrogates',
      );
    }
    if (name !== undefined && !isTaskName(name)) {
      throw new InvalidOptionError(
        'list filter.name',
        `must be a task name, got ${JSON.stringify(name)}`,
      );
    }
    if (filter.state !== undefined && !TASK_STATES.includes(filter.state)) {
      throw new InvalidOptionError('list filter.state', `must be one of ${TASK_STATES.join(', ')}`);
    }
    return this.whenOpen(() => this.store.list({ ...filter, limit }));
  }

  /** Cancels a queued or running task; a running one here has its signal aborted. */
  async cancel(id: string): Promise<Task> {
    const change = await this.whenOpen(() => this.store.cancel(id, this.settings.clock.now()));
    if (!change) throw notFound(id);
    if (!change.changed) {
      throw new OffloadError(
        'TASK_NOT_CANCELABLE',
        `task ${id} is ${change.task.state}; only queued or running tasks can be canceled`,
      );
    }
    this.abandon(id, 'canceled');
    this.events.emit('task:cancel', { task: change.task });
    return change.task;
  }

  /** Queues a failed or canceled task again now, with one more attempt if none is left. */
  async retry(id: string): Promise<Task> {
    const change = await this.whenOpen(() => this.store.retry(id, this.settings.clock.now()));
    if (!change) throw notFound(id);
    if (!change.changed) {
      throw new OffloadError(
        'TASK_NOT_RETRYABLE',
        `task ${id} is ${change.task.state}; only failed or canceled tasks can be retried`,
      );
    }
    this.wake(change.task.name, change.task.runAt.getTime());
    return change.task;
  }

  /**
   * Starts claiming and running tasks. Idempotent: later calls return the same promise, until
   * `stop()`; after it, rejects with `RUNTIME_STOPPED` (a stopped runtime does not start again).
   */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(stopped());
    return (this.starting ??= this.begin());
  }

  /**
   * Stops claiming, lets running tasks finish for up to `shutdownGrace`, then aborts the rest and
   * hands them back to the queue without using up their attempt; writes everything pending and
   * closes the store. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.shutdown());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Runs every due task (by the runtime's clock) until none is due and none is running: for tests
   * that assert what tasks did. Works whether or not the runtime was started.
   */
  async drain(): Promise<void> {
    if (this.stopping) throw stopped();
    this.drains += 1;
    try {
      await this.register();
      for (;;) {
        await this.enqueues.flushed();
        await this.noneRunning();
        await this.claiming;
        await this.settlements.flushed();
        if (this.running.size > 0 || this.claiming) continue;
        const claimed = await this.claimNow();
        if (claimed === 0 && this.running.size === 0 && this.enqueues.size === 0) return;
      }
    } finally {
      this.drains -= 1;
    }
  }

  private async begin(): Promise<void> {
    if (this.stopping) throw stopped();
    await this.open();
    await this.register();
    // Tasks added by other processes (PostgreSQL) wake this one at once rather than at its poll.
    await this.store.watch?.(() => {
      if (this.canClaim()) this.wakeNow();
    });
    this.started = true;
    await this.maintenance.start();
    this.pump();
  }

  private async shutdown(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (what: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        errors.push(error);
        this.events.emit('runtime:error', { error, during: what });
      }
    };
    await this.starting?.catch(() => undefined);
    this.started = false;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.refillTimer);
    await this.claiming;
    if (this.running.size > 0) await this.noneRunning(this.settings.shutdownGrace);
    for (const attempt of [...this.running]) this.abandonAttempt(attempt, 'shutdown');
    this.accepting = false;
    await step('writing pending tasks', () => this.enqueues.flushed());
    await step('writing task results', () => this.settleRemaining());
    await this.maintenance.stop();
    if (this.registering)
      await step('unregistering the worker', () =>
        this.store.unregisterWorker(this.settings.owner),
      );
    this.closed = true;
    await step('closing the store', () => this.store.close());
    if (errors.length > 0)
      throw new AggregateError(errors, 'the runtime stopped, but some steps failed');
  }

  /** Checks the request; throws on bad input so nothing bad is stored. */
  private prepare(
    task: TaskDefinition<never> | string,
    payload: unknown,
    options: EnqueueOptions,
  ): NewTask {
    if (!this.accepting) throw stopped();
    const definition = typeof task === 'string' ? this.settings.tasks.get(task) : task;
    return newTask(task, definition, payload, options, {
      now: this.settings.clock.now(),
      maxAttempts: this.settings.maxAttempts,
    });
  }

  private async write(tasks: NewTask[]): Promise<EnqueueResult[]> {
    await this.open();
    const results = await this.store.enqueue(tasks);
    // They start from the next turn on (see pump): the callers, an HTTP response waiting for the
    // commit say, go first.
    if (this.canClaim()) {
      for (const { task, created } of results)
        if (created) this.wake(task.name, task.runAt.getTime());
    }
    return results;
  }

  /**
   * Writes on the caller's connection, inside their transaction. Nothing wakes here: the tasks
   * exist only once the caller commits, and the store's watch (LISTEN/NOTIFY) tells runners then.
   */
  private async writeIn(transaction: SqlClient, tasks: NewTask[]): Promise<EnqueueResult[]> {
    await this.open();
    return this.store.enqueue(tasks, transaction);
  }

  private open(): Promise<void> {
    return (this.opening ??= this.store.open().catch((error) => {
      this.opening = null;
      throw error;
    }));
  }

  /** Lets the store know this process claims tasks (drain claims without start). */
  private register(): Promise<void> {
    return (this.registering ??= this.open()
      .then(() => this.store.registerWorker(this.settings.owner))
      .catch((error: unknown) => {
        this.registering = null;
        throw error;
      }));
  }

  private async whenOpen<T>(read: () => Promise<T>): Promise<T> {
    if (this.closed) throw stopped();
    await this.open();
    return read();
  }

  /** Something became due at `at`: claim now, or set a timer for it. */
  private wake(name: string, at: number): void {
    if (!this.settings.tasks.has(name)) return;
    const delay = at - this.settings.clock.now();
    if (delay > 0) this.wakeLater(delay);
    else this.wakeNow();
  }

  /** Tasks may be due: look from the next turn on, even if the last claim came back short. */
  private wakeNow(): void {
    this.wakeups += 1;
    this.moreDue = true;
    this.pump();
  }

  /** Wakes after `delay` ms, or after `pollInterval` if that is sooner (others may enqueue). */
  private wakeLater(delay: number): void {
    const wait = Math.min(delay, this.settings.pollInterval);
    const at = Date.now() + wait;
    if (at >= this.wakeAt || this.stopping) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeAt = Infinity;
      this.wakeNow();
    }, wait);
  }

  private canClaim(): boolean {
    return (this.started || this.drains > 0) && !this.stopping && this.names.length > 0;
  }

  /**
   * Looks for due tasks from the next event-loop turn on, once per turn however many tasks ended
   * or arrived in this one: synchronous tasks run inside a claim, so claims made back to back in
   * one turn would keep the loop from answering requests until a whole backlog has run.
   */
  private pump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.claimIfDue();
    });
  }

  /** Claims due tasks for the free slots now, or sets a timer for when it may (see nextClaimAt). */
  private claimIfDue(): void {
    if (this.claiming || !this.moreDue || !this.canClaim()) return;
    const free = this.settings.concurrency - this.running.size;
    if (free <= 0) return;
    const now = performance.now();
    const wait = this.nextClaimAt(free, now) - now;
    if (wait <= 0) {
      void this.claimNow();
    } else if (this.refillTimer === undefined) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.pump();
      }, wait);
    }
  }

  /**
   * When the next claim may begin. When the last claim found a backlog and half the slots are
   * free, a drain goes on at once, or, while requests are being answered, once the loop has had
   * as long for them as that claim took. Otherwise after the cooldown: tasks arriving or finishing
   * one by one (under HTTP load, say) share a claim instead of each paying a write transaction.
   */
  private nextClaimAt(free: number, now: number): number {
    if (!this.backlog || free * 2 < this.settings.concurrency) {
      return this.lastClaim + CLAIM_COOLDOWN;
    }
    return this.serving(now) ? this.yieldUntil : now;
  }

  /** Whether the app answered a request within SERVING_WINDOW of `now`. */
  private serving(now: number): boolean {
    if (this.requestAnswered) {
      this.requestAnswered = false;
      this.lastAnswered = now;
    }
    return now - this.lastAnswered < SERVING_WINDOW;
  }

  private claimNow(): Promise<number> {
    if (this.claiming) return this.claiming;
    const now = performance.now();
    this.lastClaim = now;
    const batch = this.serving(now)
      ? Math.max(1, Math.min(SERVING_CLAIM_BATCH, Math.floor(SERVING_TURN_MS / this.taskCost)))
      : CLAIM_BATCH;
    const claim = this.claimAndRun(Math.min(batch, this.settings.concurrency - this.running.size))
      .catch((error: unknown) => {
        this.events.emit('runtime:error', { error, during: 'starting claimed tasks' });
        return 0;
      })
      .finally(() => {
        this.claiming = null;
        if (this.moreDue) this.pump();
        else if (this.started) this.wakeLater(this.settings.pollInterval);
      });
    this.claiming = claim;
    return claim;
  }

  private async claimAndRun(limit: number): Promise<number> {
    if (limit <= 0 || !this.canClaim()) return 0;
    const wakeups = this.wakeups;
    const now = this.settings.clock.now();
    let tasks: ClaimedTask[];
    // The loop's own time: a store that waits on the network (PostgreSQL) holds it only briefly.
    const began = performance.now();
    let held: number;
    try {
      const claimed = this.store.claim({
        owner: this.settings.owner,
        names: this.names,
        limit,
        now,
        leaseExpiresAt: now + this.settings.leaseDuration,
      });
      held = performance.now() - began;
      tasks = await claimed;
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'claiming tasks' });
      this.moreDue = false;
      return 0;
    }
    const starting = performance.now();
    for (const task of tasks) this.run(task);
    const ended = performance.now();
    const hold = held + (ended - starting);
    this.yieldUntil = ended + hold;
    if (tasks.length > 0) this.taskCost = hold / tasks.length;
    this.backlog = tasks.length === limit;
    this.moreDue = this.backlog || this.wakeups !== wakeups;
    return tasks.length;
  }

  private run(task: ClaimedTask): void {
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
    let result: unknown;
    // Inside the try, too: reading `then` of what `run` returned may throw (a revoked Proxy).
    try {
      result =
        definition.isolate === 'thread'
          ? runInThread(definition.module!, attempt, this.settings.logger)
          : definition.run(task.payload, new Context(attempt, this.settings.logger));
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
    this.settle(settlement, () => {
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
        this.wake(task.name, retryAt.getTime());
      } else {
        this.events.emit('task:failed', { task, error: outcome });
      }
    });
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
    this.pump();
  }

  /** Stops an attempt here without an outcome of its own: canceled, lease lost, or handed back. */
  private abandon(id: string, reason: AbortReason): void {
    const attempt = this.running.get(id);
    if (attempt) this.abandonAttempt(attempt, reason);
  }

  private abandonAttempt(attempt: Attempt, reason: AbortReason): void {
    this.release(attempt);
    attempt.abort(new TaskAbortedError(reason));
    if (reason !== 'shutdown') return;
    const { task } = attempt;
    const now = this.settings.clock.now();
    const settlement: Settlement = {
      id: task.id,
      lease: task.lease,
      state: 'queued',
      at: now,
      runAt: now,
      refund: true,
    };
    this.settle(settlement, () => {
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
        if (this.accepting)
          setTimeout(() => this.settle(settlement, onApplied), this.settings.pollInterval).unref();
      },
    );
  }

  /**
   * On stop: stores the outcomes that failed to store before, once more. If the store still
   * cannot take them (a full disk, say), nothing is lost: their tasks stay `running` under this
   * worker and run again once rescued. That is reported, with their ids, and does not fail the
   * stop: the process can still exit cleanly.
   */
  private async settleRemaining(): Promise<void> {
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

  private noneRunning(timeout?: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.noneRunningWaiters.push(resolve);
      if (timeout !== undefined) setTimeout(resolve, timeout).unref();
    });
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

function notFound(id: string): OffloadError {
  return new OffloadError(
    'TASK_NOT_FOUND',
    `no task has id ${JSON.stringify(id)}; it may have been pruned after the retention period`,
  );
}

function stopped(): OffloadError {
  return new OffloadError(
    'RUNTIME_STOPPED',
    'the runtime has stopped; create a new one to enqueue or run tasks',
  );
}

/** Creates a runtime. Call `start()` to run tasks; `enqueue` works before that. */
export function createRuntime(options: RuntimeOptions): Runtime {
  return new Runtime(options);
}

function checkTransaction(transaction: unknown): SqlClient {
  if (
    transaction === null ||
    typeof transaction !== 'object' ||
    typeof (transaction as SqlClient).query !== 'function'
  ) {
    throw new InvalidOptionError(
      'enqueue options.transaction',
      "must be a node-postgres client inside your open transaction (e.g. from `await pool.connect()` after `client.query('BEGIN')`)",
    );
  }
  return transaction as SqlClient;
}
