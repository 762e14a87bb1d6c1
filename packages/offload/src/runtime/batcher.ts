/** Most items one write takes, unless the batcher is given another `maxBatch`. */
const MAX_BATCH = 2000;

export interface BatcherOptions {
  /** Shortest time (ms) between the starts of two writes; default 0. */
  cooldown?: number;
  /** Most items one write takes (default 2000); more are written in the next event-loop turn. */
  maxBatch?: number;
}

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
 * end of the cooldown. Writes run one at a time, at most `maxBatch` items each; what is left when
 * one ends is written from the next turn, so that the loop answers requests in between.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** performance.now() when the latest write began. */
  private lastWrite = -Infinity;
  private running: Promise<void> | null = null;
  private readonly cooldown: number;
  private readonly maxBatch: number;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    { cooldown = 0, maxBatch = MAX_BATCH }: BatcherOptions = {},
  ) {
    this.cooldown = cooldown;
    this.maxBatch = maxBatch;
  }

  get size(): number {
    return this.pending.length;
  }

  /**
   * Queues `item` for the next write; `resolve` gets its result, `reject` the write's error.
   * Callbacks rather than a promise: this is the hot path, one call per task.
   */
  add(item: I, resolve: (value: O) => void, reject: (error: unknown) => void): void {
    this.pending.push({ item, resolve, reject });
    if (!this.scheduled && !this.running) this.schedule(false);
  }

  /** Resolves once everything added so far has been written (or has failed). */
  async flushed(): Promise<void> {
    while (this.pending.length > 0 || this.running) {
      await (this.running ?? this.flush());
    }
  }

  /** The next write: from the next turn if `now` or the cooldown is over, else at its end. */
  private schedule(now: boolean): void {
    this.scheduled = true;
    const wait = now ? 0 : this.lastWrite + this.cooldown - performance.now();
    if (wait > 0) this.timer = setTimeout(() => void this.flush(), wait);
    else setImmediate(() => void this.flush());
  }

  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.scheduled = false;
    this.running ??= this.writeBatch().then((full) => {
      this.running = null;
      // Calls made during the write, or left over from a full batch (those go on at once).
      if (this.pending.length > 0 && !this.scheduled) this.schedule(full);
    });
    return this.running;
  }

  /** Writes the oldest `maxBatch` items; true if more were waiting. */
  private async writeBatch(): Promise<boolean> {
    const full = this.pending.length > this.maxBatch;
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return false;
    this.lastWrite = performance.now();
    let results: O[];
    try {
      results = await this.write(batch.map((p) => p.item));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return full;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
    return full;
  }
}
