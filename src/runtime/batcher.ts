/** Most items one write takes; more wait for the next. */
const MAX_BATCH = 2000;

interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Groups the calls made within one event-loop turn into one store call (one transaction for a
 * durable store): many HTTP requests answered in the same turn share one commit. With a
 * `cooldown`, a write also follows the one before by at least that many milliseconds: a call after
 * a quiet moment is written in the next turn, and the calls that come sooner share a write at the
 * end of the cooldown. Flushes run one at a time; calls made while one runs go into the next.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** performance.now() when the latest write began. */
  private lastWrite = -Infinity;
  private running: Promise<void> | null = null;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: { cooldown?: number } = {},
  ) {}

  get size(): number {
    return this.pending.length;
  }

  /**
   * Queues `item` for the next write; `resolve` gets its result, `reject` the write's error.
   * Callbacks rather than a promise: this is the hot path, one call per task.
   */
  add(item: I, resolve: (value: O) => void, reject: (error: unknown) => void): void {
    this.pending.push({ item, resolve, reject });
    if (!this.scheduled) {
      this.scheduled = true;
      const wait = this.lastWrite + (this.options.cooldown ?? 0) - performance.now();
      if (wait > 0) this.timer = setTimeout(() => void this.flush(), wait);
      else setImmediate(() => void this.flush());
    }
  }

  /** Resolves once everything added so far has been written (or has failed). */
  async flushed(): Promise<void> {
    while (this.pending.length > 0 || this.running) {
      await (this.running ?? this.flush());
    }
  }

  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.scheduled = false;
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      let results: O[];
      this.lastWrite = performance.now();
      try {
        results = await this.write(batch.map((p) => p.item));
      } catch (error) {
        for (const p of batch) p.reject(error);
        continue;
      }
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    }
  }
}
