interface Pending<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Groups the calls made within one event-loop turn into one store call (one transaction for a
 * durable store): many HTTP requests answered in the same turn share one commit. With a `delay`,
 * the calls of that many milliseconds share it instead. Flushes run one at a time; calls made
 * while one runs go into the next.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private running: Promise<void> | null = null;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: { maxBatch?: number; delay?: number } = {},
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
      if (this.options.delay) this.timer = setTimeout(() => void this.flush(), this.options.delay);
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
      const batch = this.pending.splice(0, this.options.maxBatch ?? 2000);
      let results: O[];
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
