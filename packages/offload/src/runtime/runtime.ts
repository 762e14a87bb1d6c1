import { OffloadError } from '../errors/offload-error.js';
import type { EnqueueResult, NewTask, Store } from '../store/store.js';
import type {
  EnqueueOptions,
  ListFilter,
  PausedName,
  SqlClient,
  Task,
  TaskPage,
  TaskStats,
} from '../types.js';
import { Batcher } from './batcher.js';
import { checkTaskName, type PayloadOf, type TaskDefinition } from './define-task.js';
import { Events, type Listener, type RuntimeEventName } from './events.js';
import { checkThrottle } from './groups.js';
import {
  checkListFilter,
  checkRequest,
  checkRequests,
  checkTransaction,
  givenDefinition,
} from './input-checks.js';
import { accepting, stopCalled, stopReached, type Lifecycle } from './lifecycle.js';
import { attachLogging, logWithError } from './log-listener.js';
import { Maintenance } from './maintenance.js';
import { newTask } from './new-task.js';
import { checkPayload } from './payload-schema.js';
import { ScheduleLoop } from './schedule-loop.js';
import { Schedules } from './schedules.js';
import { resolveOptions, type RuntimeOptions, type Settings } from './options.js';
import { kAnsweredRequest, Scheduler } from './scheduler.js';
import { Settler } from './settler.js';
import { EnqueueSpans, Tracing } from './tracing.js';

export { kAnsweredRequest };

/** Something to enqueue with `enqueueMany`. */
export interface TaskRequest<P = unknown> {
  task: TaskDefinition<P> | string;
  payload: P;
  options?: EnqueueOptions;
}

/**
 * Runs tasks inside this process: claims due tasks from the store, runs them with a concurrency
 * limit, renews their leases, applies timeouts and the retry policy, and hands them back on stop.
 */
export class Runtime {
  private readonly settings: Settings;
  private readonly store: Store;
  private readonly events: Events;
  private readonly enqueues: Batcher<NewTask, EnqueueResult>;
  private readonly scheduler: Scheduler;
  private readonly settler: Settler;
  private readonly maintenance: Maintenance;
  /** Named rules that enqueue a task at due times; see docs/schedules.md. */
  readonly schedules: Schedules;
  private readonly scheduleLoop: ScheduleLoop;
  /** Null when tracing is off or `@opentelemetry/api` is not installed. */
  private readonly tracing: Tracing | null;
  /** Null when `tracing` is. */
  private readonly spans: EnqueueSpans | null;

  private lifecycle: Lifecycle = { state: 'idle' };
  /** `drain()` calls under way: they let tasks be claimed whether or not the runtime started. */
  private drains = 0;
  /** The store's `open()`, made by the first call that needs the store; tried again if it failed. */
  private opening: Promise<void> | null = null;
  /** This worker's registration with the store, by `start()` or `drain()`, the first that claims. */
  private registering: Promise<void> | null = null;

  constructor(options: RuntimeOptions) {
    this.settings = resolveOptions(options);
    this.store = this.settings.store;
    this.tracing = Tracing.load(this.settings.tracing);
    this.spans = this.tracing && new EnqueueSpans(this.tracing);
    this.events = new Events((error, event) =>
      logWithError(this.settings.logger, 'error', { event }, error, 'an event listener failed'),
    );
    attachLogging(this.events, this.settings.logger);
    this.enqueues = new Batcher((tasks) => this.write(tasks));
    this.scheduler = new Scheduler(this.store, this.settings, this.events, {
      mayClaim: () => this.mayClaim(),
      polls: () => this.lifecycle.state === 'running',
      stopping: () => stopCalled(this.lifecycle),
      running: () => this.settler.size,
      run: (task) => this.settler.run(task),
    });
    this.settler = new Settler(
      this.store,
      this.settings,
      this.events,
      {
        freed: () => this.scheduler.pump(),
        due: (name, at) => this.scheduler.wake(name, at),
        retries: () => accepting(this.lifecycle),
      },
      this.tracing,
    );
    this.maintenance = new Maintenance(this.store, this.settings, this.events, {
      leases: () => [...this.settler.leases(), ...this.scheduler.leases()],
      rescued: (task) => this.scheduler.wake(task.name, task.runAt.getTime()),
      leaseLost: (id) => {
        this.scheduler.drop(id);
        this.settler.abandon(id, 'lease-lost');
      },
    });
    this.schedules = new Schedules(this.store, this.settings, this.events, {
      whenOpen: (read) => this.whenOpen(read),
      checkAccepting: () => {
        if (!accepting(this.lifecycle)) throw stopped();
      },
      fired: (task) => this.scheduler.wake(task.name, task.runAt.getTime()),
      changed: () => this.scheduleLoop.wake(),
    });
    this.scheduleLoop = new ScheduleLoop(
      () => this.schedules.fireOnce(),
      this.settings,
      this.events,
    );
  }

  [kAnsweredRequest](): void {
    this.scheduler.answeredRequest();
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends RuntimeEventName>(event: E, listener: Listener<E>): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Stores a task and resolves once it is committed. Calls made in the same event-loop turn share
   * one transaction.
   *
   * `task` is a definition given to `createRuntime({ tasks })`, or a task's name, which may be one
   * that only another process runs. A definition this runtime was not given is refused at once
   * with an `InvalidOptionError` that says to add it to `tasks` (or, if another process runs it,
   * to enqueue it by name), rather than stored to wait for a process that runs it; so is a second
   * definition under the name of one it was given.
   *
   * A definition with a `schema` (given, or found by its name) checks the payload first: one it
   * refuses rejects with an `InvalidPayloadError` naming each path, and nothing is stored.
   */
  enqueue<T extends TaskDefinition<never> | string>(
    task: T,
    payload: PayloadOf<T>,
    options?: EnqueueOptions,
  ): Promise<Task<PayloadOf<T>>> {
    type Stored = Task<PayloadOf<T>>;
    return new Promise((resolve, reject) => {
      if (options?.transaction === undefined) {
        // The hot path: no copy of the options.
        const prepared = this.prepare(task, payload, options ?? {});
        const stored = (result: EnqueueResult) => resolve(result.task as Stored);
        // A definition whose schema checks the payload asynchronously.
        if (prepared instanceof Promise) {
          return void prepared.then((ready) => this.enqueues.add(ready, stored, reject), reject);
        }
        return this.enqueues.add(prepared, stored, reject);
      }
      const { transaction, ...rest } = options;
      const client = checkTransaction(transaction);
      Promise.resolve(this.prepare(task, payload, rest))
        .then((prepared) => this.write([prepared], client))
        .then(([result]) => resolve(result!.task as Stored), reject);
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
    checkRequests(requests);
    const prepared = requests.map((r, i) => {
      checkRequest(r, i);
      return this.prepare(r.task, r.payload, r.options ?? {});
    });
    const tasks = prepared.some((p) => p instanceof Promise)
      ? await Promise.all(prepared)
      : (prepared as NewTask[]);
    const client = transaction === undefined ? undefined : checkTransaction(transaction);
    const results = await this.write(tasks, client);
    return results.map((r) => r.task);
  }

  get(id: string): Promise<Task | null> {
    return this.whenOpen(() => this.store.get(id));
  }

  async list(filter: ListFilter = {}): Promise<TaskPage> {
    const limit = checkListFilter(filter);
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
    this.scheduler.drop(id);
    this.settler.abandon(id, 'canceled');
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
    this.scheduler.wake(change.task.name, change.task.runAt.getTime());
    return change.task;
  }

  /**
   * Stops claiming tasks of `name` in every process on the store, until `resume(name)`; the
   * pause is stored, so it outlasts restarts. Running tasks finish. Returns false when the name
   * was paused already.
   */
  async pause(name: string): Promise<boolean> {
    checkTaskName(name);
    return this.whenOpen(() => this.store.pause(name, this.settings.clock.now()));
  }

  /** Claims tasks of `name` again; returns false when it was not paused. */
  async resume(name: string): Promise<boolean> {
    checkTaskName(name);
    const resumed = await this.whenOpen(() => this.store.resume(name));
    if (resumed) this.scheduler.wake(name, this.settings.clock.now());
    return resumed;
  }

  /**
   * How many tasks there are per name and state, and when the oldest due queued task was due
   * (null when none waits). The stores count from their indexes, without reading the rows.
   */
  async stats(): Promise<TaskStats> {
    const now = this.settings.clock.now();
    const { counts, oldestDue } = await this.whenOpen(() => this.store.stats(now));
    return { counts, oldestDue: oldestDue === null ? null : new Date(oldestDue) };
  }

  /** The paused task names, in name order. */
  async paused(): Promise<PausedName[]> {
    const paused = await this.whenOpen(() => this.store.paused());
    return paused.map(({ name, pausedAt }) => ({ name, pausedAt: new Date(pausedAt) }));
  }

  /**
   * Starts no task of the group `key` for `delay` ms, in every process on the store, as a task
   * throwing `RetryLaterError(delay, { throttle: true })` does. A longer throttle already set
   * stays.
   */
  async throttle(key: string, delay: number): Promise<void> {
    checkThrottle(key, delay);
    const until = this.settings.clock.now() + delay;
    await this.whenOpen(() => this.store.throttle(key, until));
  }

  /**
   * Starts claiming and running tasks. Idempotent: later calls return the same promise, until
   * `stop()`; after it, rejects with `RUNTIME_STOPPED` (a stopped runtime does not start again).
   */
  start(): Promise<void> {
    const { lifecycle } = this;
    switch (lifecycle.state) {
      case 'idle': {
        // begin() reads the state only after its first await, once it is set here.
        const started = this.begin();
        this.lifecycle = { state: 'starting', started };
        return started;
      }
      case 'starting':
      case 'running':
        return lifecycle.started;
      default:
        return Promise.reject(stopped());
    }
  }

  /**
   * Stops claiming, lets running tasks finish for up to `shutdownGrace`, then aborts the rest and
   * hands them back to the queue without using up their attempt; writes everything pending and
   * closes the store. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void> {
    const { lifecycle } = this;
    switch (lifecycle.state) {
      case 'idle':
      case 'starting':
      case 'running': {
        // shutdown() reads the state only after its first await, once it is set here.
        const stopped = this.shutdown(lifecycle.state === 'idle' ? null : lifecycle.started);
        this.lifecycle = { state: 'stopping', stopped };
        return stopped;
      }
      default:
        return lifecycle.stopped;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Runs every due task (by the runtime's clock) until none is due and none is running: for tests
   * that assert what tasks did. Works whether or not the runtime was started.
   */
  async drain(): Promise<void> {
    if (stopCalled(this.lifecycle)) throw stopped();
    this.drains += 1;
    try {
      await this.register();
      for (;;) {
        await this.enqueues.flushed();
        await this.settler.noneRunning();
        await this.scheduler.underWay;
        await this.settler.flushed();
        if (this.settler.size > 0 || this.scheduler.underWay) continue;
        // Starts the tasks claimed ahead first, if any; those that ran at once settle below.
        const claimed = await this.scheduler.claimNow();
        if (claimed > 0 || this.settler.size > 0 || this.enqueues.size > 0) continue;
        await this.settler.flushed();
        if (this.settler.size === 0 && this.scheduler.waiting === 0) return;
      }
    } finally {
      this.drains -= 1;
    }
  }

  private async begin(): Promise<void> {
    await this.open();
    await this.register();
    // Tasks added by other processes (PostgreSQL) wake this one at once rather than at its poll.
    await this.store.watch?.(() => {
      if (this.scheduler.canClaim()) this.scheduler.wakeNow();
    });
    const { lifecycle } = this;
    if (lifecycle.state === 'starting') {
      this.lifecycle = { state: 'running', started: lifecycle.started };
    }
    await this.maintenance.start();
    if (this.lifecycle.state === 'running') this.scheduleLoop.start();
    this.scheduler.pump();
  }

  /** Stops after `started`, if start() was called; every step runs, and their errors add up. */
  private async shutdown(started: Promise<void> | null): Promise<void> {
    const errors: unknown[] = [];
    const step = async (what: string, action: () => Promise<unknown>) => {
      try {
        await action();
      } catch (error) {
        errors.push(error);
        this.events.emit('runtime:error', { error, during: what });
      }
    };
    await started?.catch(() => undefined);
    await this.scheduleLoop.stop();
    await this.scheduler.stop();
    this.settler.handBackUnstarted(this.scheduler.takeWaiting());
    if (this.settler.size > 0) await this.settler.noneRunning(this.settings.shutdownGrace);
    this.settler.handBack();
    this.lifecycle = stopReached(this.lifecycle, 'flushing');
    await step('writing pending tasks', () => this.enqueues.flushed());
    await step('writing task results', () => this.settler.settleRemaining());
    await this.maintenance.stop();
    if (this.registering)
      await step('unregistering the worker', () =>
        this.store.unregisterWorker(this.settings.owner),
      );
    this.lifecycle = stopReached(this.lifecycle, 'stopped');
    await step('closing the store', () => this.store.close());
    if (errors.length > 0)
      throw new AggregateError(errors, 'the runtime stopped, but some steps failed');
  }

  /** Whether tasks may be claimed: while running, or draining before the stop. */
  private mayClaim(): boolean {
    return this.lifecycle.state === 'running' || (this.drains > 0 && !stopCalled(this.lifecycle));
  }

  /**
   * Checks the request; throws on bad input so nothing bad is stored. A promise when the task's
   * schema checks the payload asynchronously; it rejects when the schema refuses it.
   */
  private prepare(
    task: TaskDefinition<never> | string,
    payload: unknown,
    options: EnqueueOptions,
  ): NewTask | Promise<NewTask> {
    if (!accepting(this.lifecycle)) throw stopped();
    const definition = givenDefinition(task, this.settings.tasks);
    const checked = definition?.schema === undefined ? null : checkPayload(definition, payload);
    const prepared = newTask(task, definition, payload, options, {
      now: this.settings.clock.now(),
      maxAttempts: this.settings.maxAttempts,
    });
    // Started in the caller's context: the request, say, that enqueues.
    const traced = this.spans?.start(prepared, options.traceparent) ?? false;
    if (checked === null) return prepared;
    return checked.then(
      () => prepared,
      (error: unknown) => {
        if (traced) this.spans!.failed([prepared], error);
        throw error;
      },
    );
  }

  /**
   * Stores `tasks`, on the caller's connection inside their transaction when `transaction` is
   * given. Only tasks written on the store's own connection wake runners here: those in a caller's
   * transaction exist once it commits, and the store's watch (LISTEN/NOTIFY) tells runners then.
   */
  private async write(tasks: NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]> {
    let results: EnqueueResult[];
    try {
      await this.open();
      results = await this.store.enqueue(tasks, transaction);
    } catch (error) {
      this.spans?.failed(tasks, error);
      throw error;
    }
    this.spans?.stored(tasks, results);
    // They start from the next turn on (see Scheduler.pump): the callers, an HTTP response
    // waiting for the commit say, go first.
    if (transaction === undefined && this.scheduler.canClaim()) {
      for (const { task, created } of results)
        if (created) this.scheduler.wake(task.name, task.runAt.getTime());
    }
    return results;
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
    if (this.lifecycle.state === 'stopped') throw stopped();
    await this.open();
    return read();
  }
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
