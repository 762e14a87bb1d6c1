import type { Runtime } from '../runtime/runtime.js';
import type { TaskStats } from '../types.js';

/** A count is reused for at least this many times as long as it took. */
const COST_FACTOR = 100;

/**
 * The store's counts, read at most once per `ttl` ms and shared by every page and live client.
 * Counting reads an index entry per stored task: on a small store a page waits for fresh counts,
 * on a large one it waits `wait` ms at most and shows the last reading while the fresh one is read
 * behind it, so that no page waits on a count of a million rows.
 */
export class StatsCache {
  private value: { at: number; stats: TaskStats } | null = null;
  /** How long the last count took, ms. */
  private cost = 0;
  private reading: Promise<TaskStats | null> | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly ttl: number,
    private readonly wait: number,
    private readonly now: () => number,
    private readonly failed: (error: unknown) => void,
  ) {}

  /**
   * The counts: fresh when they can be read within `wait` ms; else the last reading, while the
   * fresh one goes on behind it. Null when the store failed and nothing was read before.
   */
  async get(): Promise<TaskStats | null> {
    const { value } = this;
    if (value !== null && this.now() - value.at < this.reuse()) return value.stats;
    const reading = this.read();
    if (value === null) return reading;
    let timer: NodeJS.Timeout | undefined;
    const stale = new Promise<TaskStats>((resolve) => {
      timer = setTimeout(() => resolve(value.stats), this.wait);
    });
    try {
      return (await Promise.race([reading, stale])) ?? value.stats;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * How long a count is reused: `ttl`, or longer when counting is slow, so that counting takes
   * at most about 1% of the time whatever the size of the store (SQLite counts on the event
   * loop: a count of a million tasks that takes 300 ms is then reused for 30 s).
   */
  private reuse(): number {
    return Math.max(this.ttl, COST_FACTOR * this.cost);
  }

  private read(): Promise<TaskStats | null> {
    const started = performance.now();
    return (this.reading ??= this.runtime
      .stats()
      .then(
        (stats) => {
          this.cost = performance.now() - started;
          this.value = { at: this.now(), stats };
          return stats;
        },
        (error: unknown) => {
          this.failed(error);
          return null;
        },
      )
      .finally(() => {
        this.reading = null;
      }));
  }
}
