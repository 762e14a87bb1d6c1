import type { ClaimedTask, Lease } from '../store/store.js';

/**
 * How far ahead a process with no requests to answer claims, as a multiple of its concurrency:
 * up to this many times `concurrency` tasks may wait here, claimed, for a slot. A drain of short
 * tasks then pays one claim (a round trip and a transaction) per few hundred tasks instead of one
 * per `concurrency`, and the next claim is under way while the tasks of the last one run.
 */
export const PREFETCH_FACTOR = 5;
/**
 * Tasks wait here no longer than about this many ms: a claim takes ahead only as many tasks as
 * started in the last such window, so that slow tasks are not held back from other processes.
 */
const PREFETCH_HORIZON = 100;

/**
 * Tasks claimed ahead of a free slot, in claim order. They are this process's claim like the
 * running ones: their leases are renewed, a cancel or a lost lease drops them, and on stop they go
 * back to the queue without using up an attempt.
 */
export class Prefetch {
  private queue: ClaimedTask[] = [];
  private head = 0;
  /** Tasks started since the window began, and per PREFETCH_HORIZON in the window before. */
  private startsNow = 0;
  private startsBefore = 0;
  private windowBegan = -Infinity;

  get size(): number {
    return this.queue.length - this.head;
  }

  push(task: ClaimedTask): void {
    this.queue.push(task);
  }

  /** The oldest task waiting, taken out. */
  shift(): ClaimedTask | undefined {
    const task = this.queue[this.head];
    if (task === undefined) return undefined;
    this.head += 1;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return task;
  }

  leases(): Lease[] {
    const leases: Lease[] = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const { id, lease } = this.queue[i]!;
      leases.push({ id, lease });
    }
    return leases;
  }

  /** Takes the task out, unstarted; false when it does not wait here. */
  drop(id: string): boolean {
    const i = this.queue.findIndex((task, at) => at >= this.head && task.id === id);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** Every task waiting, taken out. */
  takeAll(): ClaimedTask[] {
    const all = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return all;
  }

  /** Counts a task started at `now` (performance.now()). */
  started(now: number): void {
    this.roll(now);
    this.startsNow += 1;
  }

  /** How many tasks may wait here at most, claimed ahead: 0 while requests are answered. */
  depth(now: number, concurrency: number, serving: boolean): number {
    if (serving) return 0;
    this.roll(now);
    const recent = Math.max(this.startsNow, this.startsBefore);
    return Math.min(concurrency * PREFETCH_FACTOR, recent);
  }

  /** Begins a new window once the current one is PREFETCH_HORIZON old or older. */
  private roll(now: number): void {
    const elapsed = now - this.windowBegan;
    if (elapsed < PREFETCH_HORIZON) return;
    this.startsBefore = Number.isFinite(elapsed)
      ? Math.floor((this.startsNow * PREFETCH_HORIZON) / elapsed)
      : 0;
    this.startsNow = 0;
    this.windowBegan = now;
  }
}
