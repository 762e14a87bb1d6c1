import type { Runtime } from '../runtime/runtime.js';
import type { TaskStats } from '../types.js';

/**
 * The store's counts, read at most once per `ttl` ms and shared by every page and live client.
 * Counting reads an index entry per stored task; once a reading exists, a stale one is answered
 * at once while a fresh one is read behind it, so that no page waits on a count of a large table
 * (the counts shown are then up to about `ttl` old).
 */
export class StatsCache {
  private value: { at: number; stats: TaskStats } | null = null;
  private reading: Promise<TaskStats | null> | null = null;

  constructor(
    private readonly runtime: Runtime,
    private readonly ttl: number,
    private readonly now: () => number,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** The counts: fresh, or stale while a read is under way; null when the store failed. */
  async get(): Promise<TaskStats | null> {
    const { value } = this;
    if (value !== null && this.now() - value.at < this.ttl) return value.stats;
    const reading = this.read();
    return value !== null ? value.stats : reading;
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
