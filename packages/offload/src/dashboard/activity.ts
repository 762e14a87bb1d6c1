import type { Runtime } from '../runtime/runtime.js';
import { MINUTE } from '../time.js';

/** Minutes kept: the last hour. */
export const ACTIVITY_MINUTES = 60;

export interface MinuteCounts {
  /** Start of the minute, epoch ms. */
  at: number;
  succeeded: number;
  /** Failed attempts, whether retried or not. */
  errors: number;
  /** Tasks that failed for good. */
  failed: number;
}

/**
 * Tasks finished by this process over the last hour, per minute, counted from the runtime's
 * events in a ring of 60 minutes: no store read, so the chart costs nothing however many tasks
 * are stored. It shows this process only, and starts empty when the process starts.
 */
export class Activity {
  private readonly ring: MinuteCounts[] = [];
  private readonly unsubscribe: (() => void)[];

  constructor(
    runtime: Runtime,
    private readonly now: () => number,
  ) {
    this.unsubscribe = [
      runtime.on('task:success', () => this.bucket().succeeded++),
      runtime.on('task:error', () => this.bucket().errors++),
      runtime.on('task:failed', () => this.bucket().failed++),
    ];
  }

  /** The last hour, oldest minute first, with the minutes without tasks as zeros. */
  lastHour(): MinuteCounts[] {
    const current = minuteOf(this.now());
    const byMinute = new Map(this.ring.map((m) => [m.at, m]));
    const minutes: MinuteCounts[] = [];
    for (let i = ACTIVITY_MINUTES - 1; i >= 0; i -= 1) {
      const at = current - i * MINUTE;
      minutes.push({ ...(byMinute.get(at) ?? { at, succeeded: 0, errors: 0, failed: 0 }) });
    }
    return minutes;
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private bucket(): MinuteCounts {
    const at = minuteOf(this.now());
    const last = this.ring.at(-1);
    if (last?.at === at) return last;
    const fresh = { at, succeeded: 0, errors: 0, failed: 0 };
    this.ring.push(fresh);
    while (this.ring.length > 0 && this.ring[0]!.at <= at - ACTIVITY_MINUTES * MINUTE) {
      this.ring.shift();
    }
    return fresh;
  }
}

function minuteOf(time: number): number {
  return time - (time % MINUTE);
}
