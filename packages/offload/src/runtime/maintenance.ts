import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Lease, Store } from '../store/store.js';
import { SECOND } from '../time.js';
import type { Task } from '../types.js';
import type { Events } from './events.js';
import type { Settings } from './options.js';

const PRUNE_BATCH = 1000;
/** Pruning and the unknown-name report read much of the table: not in the busy first moments. */
const FIRST_PRUNE = 30 * SECOND;

/** What the maintenance needs of the runtime it serves. */
export interface MaintainedRuntime {
  /** The leases this process holds: running tasks, and results not stored yet. */
  leases(): Lease[];
  /** Another process's task was handed back and may be due. */
  rescued(task: Task): void;
  /** This process lost the lease of a task: its attempt must stop. */
  leaseLost(id: string): void;
}

/**
 * The runtime's periodic work: rescuing the tasks of stopped processes, renewing the leases this
 * process holds, pruning finished tasks past retention and reporting tasks no definition here
 * knows. Each step's errors are reported as `runtime:error`, never thrown; `stop` waits for the
 * steps under way.
 */
export class Maintenance {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly underWay = new Set<Promise<void>>();
  private pruning = false;
  private running = false;
  private readonly reportedUnknown = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly settings: Settings,
    private readonly events: Events,
    private readonly runtime: MaintainedRuntime,
  ) {}

  /** Starts the timers and rescues once, now. */
  async start(): Promise<void> {
    this.running = true;
    const { rescueInterval, pruneInterval, leaseDuration } = this.settings;
    this.every(rescueInterval, () => this.rescue());
    this.every(leaseDuration / 3, () => this.renewLeases());
    this.every(pruneInterval, () => this.prune());
    this.timers.push(
      setTimeout(() => void this.track(this.prune()), Math.min(pruneInterval, FIRST_PRUNE)).unref(),
    );
    await this.track(this.rescue());
  }

  /** Stops the timers and waits for the steps under way. */
  async stop(): Promise<void> {
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all(this.underWay);
  }

  private every(interval: number, action: () => Promise<void>): void {
    this.timers.push(setInterval(() => void this.track(action()), interval).unref());
  }

  /** Keeps a step in view until it ends, so that stop() can wait for it. */
  private track(work: Promise<void>): Promise<void> {
    const tracked = work
      .catch((error: unknown) =>
        this.events.emit('runtime:error', { error, during: 'maintenance' }),
      )
      .finally(() => this.underWay.delete(tracked));
    this.underWay.add(tracked);
    return tracked;
  }

  private async rescue(): Promise<void> {
    try {
      const rescued = await this.store.rescue(this.settings.clock.now());
      for (const { task, owner } of rescued) {
        this.events.emit('task:rescue', { task, owner });
        if (task.state === 'queued') this.runtime.rescued(task);
      }
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'rescuing tasks of stopped processes' });
    }
  }

  private async renewLeases(): Promise<void> {
    const leases = this.runtime.leases();
    if (leases.length === 0) return;
    try {
      const lost = await this.store.renew(
        leases,
        this.settings.clock.now() + this.settings.leaseDuration,
      );
      for (const id of lost) this.runtime.leaseLost(id);
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'renewing leases' });
    }
  }

  /** Prunes finished tasks past retention and reports tasks no definition here knows. */
  private async prune(): Promise<void> {
    if (this.pruning) return;
    this.pruning = true;
    try {
      const now = this.settings.clock.now();
      let pruned = 0;
      let batch: number;
      do {
        batch = await this.store.prune(now - this.settings.retention, PRUNE_BATCH);
        pruned += batch;
        await nextTurn();
      } while (batch === PRUNE_BATCH && this.running);
      if (pruned > 0) this.settings.logger.info({ pruned }, 'pruned finished tasks past retention');
      const { counts } = await this.store.stats(now);
      for (const { name, state, count } of counts) {
        if (state !== 'queued' || this.settings.tasks.has(name) || this.reportedUnknown.has(name))
          continue;
        this.reportedUnknown.add(name);
        this.events.emit('task:unknown', { name, count });
      }
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'pruning finished tasks' });
    } finally {
      this.pruning = false;
    }
  }
}
