import type Database from 'better-sqlite3';

/** Past this many, the ids of running tasks with a group are forgotten, and the claim looks again. */
const MAX_RUNNING = 100_000;

/**
 * What a claim learned when it visited every key that has due tasks and found each blocked
 * (throttled, at its concurrency, or out of its rate): that the claims after it can pass the keys
 * by, without reading them, until the first of
 *
 * - `until`: the earliest end of a throttle or next start of a rate among those keys, or the
 *   run-at of the next task with a group to come due;
 * - a commit by another connection (`PRAGMA data_version`): another process may have added,
 *   ended, canceled or rescued tasks;
 * - a write of this connection that can unblock a key: tasks with a group enqueued, one of its
 *   running tasks with a group ended, a cancel, retry, rescue, throttle, pause or resume;
 * - a claim of other names.
 *
 * Without it, every claim of a drain met by blocked keys read each of them again, about three
 * index reads a key, to take nothing.
 */
export class BlockedGroups {
  private known: { until: number; names: string; version: number; writes: number } | null = null;
  /** Writes of this connection that can unblock a key. */
  private writes = 0;
  /** Tasks with a group that this connection started and has not seen end. */
  private readonly running = new Set<number>();
  private readonly dataVersion: Database.Statement<[], number>;

  constructor(db: Database.Database) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /** Whether a claim of `names` at `now` may pass the keys by. */
  blocked(names: readonly string[], now: number): boolean {
    const { known } = this;
    return (
      known !== null &&
      now < known.until &&
      known.writes === this.writes &&
      known.names === names.join('\0') &&
      known.version === this.dataVersion.get()
    );
  }

  /** A claim of `names` visited every key with due tasks, took nothing, and no key can start a task before `until`. */
  remember(names: readonly string[], until: number): void {
    this.known = {
      until,
      names: names.join('\0'),
      version: this.dataVersion.get()!,
      writes: this.writes,
    };
  }

  /** Whether this connection has started tasks with a group that it has not seen end. */
  get tracking(): boolean {
    return this.running.size > 0;
  }

  /** This connection started these tasks with a group. */
  started(ids: readonly number[]): void {
    if (this.running.size + ids.length > MAX_RUNNING) {
      this.running.clear();
      this.changed();
    }
    for (const id of ids) this.running.add(id);
  }

  /** These tasks' attempts ended: a key they held may start another. */
  ended(ids: Iterable<number>): void {
    for (const id of ids) if (this.running.delete(id)) this.changed();
  }

  /** A write that may unblock a key or add due tasks with a group. */
  changed(): void {
    this.writes += 1;
    this.known = null;
  }
}
