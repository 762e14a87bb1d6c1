import type {
  EnqueueResult,
  FireRequest,
  FireResult,
  NewSchedule,
  NewTask,
  StoredSchedule,
} from './store.js';

/**
 * The schedules of a memory store. Each call runs to its end without yielding, which is what a
 * transaction is in a single-threaded store: a due time fires once.
 */
export class MemorySchedules {
  private readonly rows = new Map<string, StoredSchedule>();

  /** `insert` enqueues in the store's own tasks, synchronously. */
  constructor(private readonly insert: (tasks: readonly NewTask[]) => EnqueueResult[]) {}

  set(input: NewSchedule, now: number): StoredSchedule {
    const stored = this.rows.get(input.name);
    const { nextRunAt, ...rest } = input;
    const row: StoredSchedule = stored
      ? {
          ...stored,
          ...rest,
          nextRunAt: stored.paused
            ? null
            : stored.rule === input.rule && stored.nextRunAt !== null
              ? stored.nextRunAt
              : nextRunAt,
          updatedAt: now,
        }
      : {
          ...rest,
          paused: false,
          nextRunAt,
          lastRunAt: null,
          lastTaskId: null,
          createdAt: now,
          updatedAt: now,
        };
    this.rows.set(row.name, row);
    return { ...row };
  }

  get(name: string): StoredSchedule | null {
    const row = this.rows.get(name);
    return row ? { ...row } : null;
  }

  list(): StoredSchedule[] {
    return [...this.rows.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((row) => ({ ...row }));
  }

  pause(name: string, now: number): StoredSchedule | null {
    const row = this.rows.get(name);
    if (!row) return null;
    if (!row.paused) Object.assign(row, { paused: true, nextRunAt: null, updatedAt: now });
    return { ...row };
  }

  resume(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): StoredSchedule | null {
    const row = this.rows.get(name);
    if (!row) return null;
    if (row.paused) {
      Object.assign(row, { paused: false, nextRunAt: next({ ...row }), updatedAt: now });
    }
    return { ...row };
  }

  remove(name: string): boolean {
    return this.rows.delete(name);
  }

  fire({ now, limit, plan }: FireRequest): FireResult {
    const due = [...this.rows.values()]
      .filter((row) => !row.paused && row.nextRunAt !== null && row.nextRunAt <= now)
      .sort((a, b) => a.nextRunAt! - b.nextRunAt!)
      .slice(0, limit);
    const fired = due.map((row) => {
      const { tasks, lastRunAt, nextRunAt } = plan({ ...row });
      const results = this.insert(tasks);
      row.nextRunAt = nextRunAt;
      if (results.length > 0) {
        row.lastRunAt = lastRunAt;
        row.lastTaskId = results[results.length - 1]!.task.id;
      }
      return { schedule: { ...row }, results };
    });
    let nextRunAt: number | null = null;
    for (const row of this.rows.values()) {
      if (row.paused || row.nextRunAt === null) continue;
      if (nextRunAt === null || row.nextRunAt < nextRunAt) nextRunAt = row.nextRunAt;
    }
    return { fired, nextRunAt };
  }
}
