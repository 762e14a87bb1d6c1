import type { Runtime } from '../runtime/runtime.js';
import type { TaskStats } from '../types.js';

/**
 * The store's counts, read at most once per `ttl` ms and shared by every page and live client.
 * Counting reads an index entry per stored task: on a small store a page waits for fresh counts,
 * on a large one it waits `wait` ms at most and shows the last reading while the fresh one is read
 * behind it, so that no page waits on a count of a million rows.
 */
export class StatsCache {
  private value: { at: number; stats: TaskStats } | null = null;
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
    if (value !== null && this.now() - value.at < this.ttl) return value.stats;
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

  private read(): Promise<TaskStats | null> {
    return (this.reading ??= this.runtime
      .stats()
      .then(
        (stats) => {
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
