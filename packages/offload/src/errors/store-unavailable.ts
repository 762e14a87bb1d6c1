import { OffloadError } from './offload-error.js';

/**
 * Why a store cannot serve now, whatever its database. Each is for an operator to fix (free
 * space, remount read-write, bring the server back); none is a bug of the caller.
 */
export type StoreUnavailableReason =
  /** The disk of the database is full. */
  | 'disk-full'
  /** The database cannot be written: a read-only file system, or files the process may not write. */
  | 'read-only'
  /** The disk or file system failed to read or write. */
  | 'io-error'
  /** A file of the database cannot be opened (missing, or no descriptors left). */
  | 'cannot-open'
  /** Another process holds the database's lock for longer than the store waits. */
  | 'locked'
  /** The database file is damaged. */
  | 'corrupt'
  /** The file at the database's path is not a database. */
  | 'not-a-database'
  /** The database file was deleted or replaced under the open store. */
  | 'file-moved'
  /** The database server cannot be reached, or the connection to it broke. */
  | 'unreachable'
  /** No connection to the database server could be had in time. */
  | 'timed-out'
  /** The database server is shutting down or restarting. */
  | 'shutting-down'
  /** The database server is out of a resource: disk, memory or connections. */
  | 'out-of-resources';

export interface StoreUnavailableOptions {
  reason: StoreUnavailableReason;
  /** What an operator should check, e.g. `the disk of the SQLite database is full: free space on it`. */
  hint: string;
  /** The driver's code (`SQLITE_FULL`, `ECONNREFUSED`, `57P01`); null when it gave none. */
  driverCode?: string | null;
  /** The driver's error. */
  cause?: unknown;
}

/**
 * Thrown by a store whose database cannot serve now: a full disk, a read-only file system, a
 * database server away or shutting down. The same call may succeed once what `hint` says is
 * fixed; the HTTP side answers it with a 503. `cause` is the driver's error, and `driverCode` its
 * code, for logs and metrics: nothing needs to read the driver's error to classify it.
 */
export class StoreUnavailableError extends OffloadError {
  declare readonly code: 'STORE_UNAVAILABLE';
  readonly reason: StoreUnavailableReason;
  /** What an operator should check. */
  readonly hint: string;
  /** The driver's code, or null when it gave none. */
  readonly driverCode: string | null;

  constructor(message: string, options: StoreUnavailableOptions) {
    const { reason, hint, driverCode = null } = options;
    super('STORE_UNAVAILABLE', message, 'cause' in options ? { cause: options.cause } : undefined);
    this.reason = reason;
    this.hint = hint;
    this.driverCode = driverCode;
  }
}
