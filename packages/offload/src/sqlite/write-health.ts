import type Database from 'better-sqlite3';
import { StoreUnavailableError, type StoreUnavailableReason } from '../errors/store-unavailable.js';
import type { Logger } from '../types.js';
import { sqliteStoreError } from './errors.js';

/**
 * Why a database cannot be written now, whatever is written: a full disk, an I/O error, a
 * read-only file system, a file it can no longer open (no descriptors left) or read. Not `locked`:
 * another process holding the lock is contention, not a fault.
 */
const WRITE_FAULTS: ReadonlySet<StoreUnavailableReason> = new Set([
  'disk-full',
  'io-error',
  'read-only',
  'cannot-open',
  'corrupt',
  'not-a-database',
]);

/** The shortest time (ms) between two attempts to shrink the log. */
export const RECOVERY_INTERVAL_MS = 1000;

/** Whether `error`, as the store reports it (see errors.ts), is a write fault (see above). */
export function isWriteFault(error: unknown): error is StoreUnavailableError {
  return error instanceof StoreUnavailableError && WRITE_FAULTS.has(error.reason);
}

/**
 * Whether the store's writes succeed, and what it does by itself to make them succeed again.
 *
 * A disk that filled up stays full for SQLite after space is freed elsewhere: the write-ahead log
 * takes what was free, every commit then fails because the log cannot grow, and the checkpoints
 * that would let it start over run only after a commit succeeds. So after a write fails on a
 * fault, the store copies the log into the database and truncates it (at most once a second, and
 * without waiting for readers); that succeeds as soon as the database file can take the pages.
 * The first write that succeeds after a fault does the same, so that the space the log took is
 * free again.
 *
 * While the last write failed, `check` (the store's `ping`, so `/readyz`) throws until a write
 * succeeds, or until the log could be emptied and a write of its own then succeeds: so a process
 * that takes no traffic while it is not ready still finds out when it is. A small write alone
 * proves little: it may fit in the last bytes of a full disk where a task does not.
 */
export class WriteHealth {
  /** The error of the last write, while it failed on a fault and none has succeeded since. */
  private failure: StoreUnavailableError | null = null;
  private lastRecovery = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly logger: Logger | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  succeeded(): void {
    if (this.failure === null) return;
    this.failure = null;
    // The log still holds what it gained up to the fault: shrink it now that there is room.
    this.lastRecovery = Number.NEGATIVE_INFINITY;
    this.recover();
    this.logger?.info({ path: this.path }, 'the SQLite database takes writes again');
  }

  failed(error: unknown): void {
    if (!isWriteFault(error)) return;
    this.failure = error;
    this.recover();
  }

  /**
   * Throws a `StoreUnavailableError` while writes fail on a fault (see above). `failed` takes
   * errors as the store reports them (see errors.ts).
   */
  check(): void {
    if (this.failure === null) return;
    try {
      if (!this.recover()) throw this.failure;
      this.probe();
    } catch (thrown) {
      const error = sqliteStoreError(thrown);
      if (!(error instanceof StoreUnavailableError)) throw error;
      if (isWriteFault(error)) this.failure = error;
      throw new StoreUnavailableError(
        `the SQLite database ${this.path} cannot be written: ${error.message}`,
        { reason: error.reason, hint: error.hint, driverCode: error.driverCode, cause: error },
      );
    }
    this.succeeded();
  }

  /**
   * Copies the log into the database and truncates it, unless that was tried a moment ago;
   * returns whether the log is empty now.
   */
  private recover(): boolean {
    const now = this.now();
    if (now - this.lastRecovery < RECOVERY_INTERVAL_MS) return false;
    this.lastRecovery = now;
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    try {
      // TRUNCATE waits for readers through the busy handler: not with the event loop blocked.
      this.db.pragma('busy_timeout = 0');
      const [{ busy }] = this.db.pragma('wal_checkpoint(TRUNCATE)') as [{ busy: number }];
      return busy === 0;
    } catch (thrown) {
      // Still full: the next failed write or check tries again.
      const error = sqliteStoreError(thrown);
      if (isWriteFault(error)) this.failure = error;
      return false;
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  /** A committed write that changes nothing: the schema version, set to what it is. */
  private probe(): void {
    this.db
      .transaction(() => {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        this.db.pragma(`user_version = ${version}`);
      })
      .immediate();
  }
}
