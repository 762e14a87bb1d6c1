import { encodeProgress } from '../json.js';
import type { ProgressUpdate, Settlement, Store } from '../store/store.js';
import { SECOND } from '../time.js';
import type { Json } from '../types.js';
import type { Attempt } from './attempt.js';
import type { Events } from './events.js';
import type { Settings } from './options.js';

/**
 * Shortest time between two writes of progress, in ms of the runtime's clock. A task may report
 * on every item it handles; the store sees the latest value of each running task at most once per
 * this time, every task's in one write, and the last value with the attempt's outcome.
 */
export const PROGRESS_INTERVAL = SECOND;

/**
 * What running tasks report with `ctx.progress`: keeps the latest value of each attempt and writes
 * them together, fenced by their leases. After a quiet moment a report is written from the next
 * turn; those that follow within PROGRESS_INTERVAL share the write at its end. When an attempt
 * ends, its latest value leaves here to be written with its outcome (see Settlement.progress):
 * written apart, it could land after the outcome and be refused by the fence.
 *
 * Progress is for people watching: a write the store fails is reported as `runtime:error` and not
 * tried again, as the next report (or the outcome) carries the latest value anyway.
 */
export class ProgressReports {
  /** Attempts that reported since the last write, by task id. */
  private readonly pending = new Map<string, Attempt>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | null = null;
  /** The runtime's clock when the latest write began. */
  private lastWrite = -Infinity;

  constructor(
    private readonly store: Store,
    private readonly settings: Settings,
    private readonly events: Events,
  ) {}

  /**
   * `ctx.progress(value)`: keeps `value` as the attempt's latest. Throws an InvalidPayloadError for
   * a value that is not JSON or is too large; a report after the attempt's outcome is ignored.
   */
  report(attempt: Attempt, value: unknown): void {
    const text = encodeProgress(value);
    if (attempt.done) return;
    attempt.progress = text;
    this.pending.set(attempt.task.id, attempt);
    this.schedule();
  }

  /** The attempt ended: adds its latest report, if it made any, to its outcome. */
  end(attempt: Attempt, settlement?: Settlement): void {
    // Most attempts never report: they cost one check here.
    if (attempt.progress === undefined) return;
    if (settlement) settlement.progress = attempt.progress;
    if (this.pending.get(attempt.task.id) === attempt) this.pending.delete(attempt.task.id);
    if (this.pending.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * The outcome of `attempt` was stored: tells `task:progress` listeners of the value it carried,
   * unless they were told already.
   */
  stored(attempt: Attempt, settlement: Settlement): void {
    if (settlement.progress !== undefined) this.show(attempt, settlement.progress);
  }

  /** On stop, once no attempt runs: waits for the write under way. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    await this.writing;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.writing !== null) return;
    const wait = Math.max(0, this.lastWrite + PROGRESS_INTERVAL - this.settings.clock.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.writing = this.write().finally(() => {
        this.writing = null;
        if (this.pending.size > 0) this.schedule();
      });
    }, wait);
  }

  private async write(): Promise<void> {
    const attempts = [...this.pending.values()];
    this.pending.clear();
    this.lastWrite = this.settings.clock.now();
    const updates: ProgressUpdate[] = attempts.map(({ task, progress }) => ({
      id: task.id,
      lease: task.lease,
      progress: progress!,
    }));
    let lost: string[];
    try {
      lost = await this.store.progress(updates);
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'storing the progress of tasks' });
      return;
    }
    const refused = new Set(lost);
    for (let i = 0; i < attempts.length; i++) {
      const attempt = attempts[i]!;
      // One that ended meanwhile shows its last value with its outcome.
      if (!refused.has(attempt.task.id) && !attempt.done) {
        this.show(attempt, updates[i]!.progress);
      }
    }
    if (lost.length > 0) {
      this.settings.logger.debug(
        { taskIds: lost },
        'progress was not stored: the task ended, was canceled or its lease was taken over',
      );
    }
  }

  private show(attempt: Attempt, text: string): void {
    if (attempt.progressShown === text || !this.events.has('task:progress')) return;
    attempt.progressShown = text;
    const { task } = attempt;
    task.progress = JSON.parse(text) as Json;
    this.events.emit('task:progress', { task, progress: task.progress });
  }
}
