import { StoreUnavailableError, type StoreUnavailableReason } from '../errors/store-unavailable.js';

/**
 * SQLite's primary result codes that mean the database cannot serve now (an extended code, like
 * `SQLITE_IOERR_WRITE`, is its primary code and a suffix), why, and what an operator should check.
 */
const FAULTS: [code: string, reason: StoreUnavailableReason, hint: string][] = [
  ['SQLITE_FULL', 'disk-full', 'the disk of the SQLite database is full: free space on it'],
  [
    'SQLITE_READONLY',
    'read-only',
    'the SQLite database cannot be written: check that its file system is mounted read-write and that the process may write the file, its -wal and -shm files and their directory',
  ],
  [
    'SQLITE_IOERR',
    'io-error',
    'the SQLite database could not be read or written (an I/O error): check the disk and the file system it is on',
  ],
  [
    'SQLITE_CANTOPEN',
    'cannot-open',
    'the SQLite database file cannot be opened: check that it and its directory exist and are writable',
  ],
  [
    'SQLITE_BUSY',
    'locked',
    'the SQLite database is locked by another process: check what else holds it open',
  ],
  [
    'SQLITE_LOCKED',
    'locked',
    'the SQLite database is locked by another process: check what else holds it open',
  ],
  [
    'SQLITE_CORRUPT',
    'corrupt',
    'the SQLite database file is damaged: restore it from a backup, or check the disk',
  ],
  [
    'SQLITE_NOTADB',
    'not-a-database',
    'the file at the SQLite database path is not a database (replaced?): check the path and the file',
  ],
  [
    'SQLITE_PROTOCOL',
    'locked',
    'the SQLite database file is locked in a way SQLite cannot resolve: retry',
  ],
];

const FILE_MOVED_HINT =
  'the database file was deleted or replaced under the running process: restore it, or restart the process to use the file now at that path';

/**
 * `error` as the SQLite store throws it: an error of better-sqlite3 that means the database
 * cannot serve now becomes a `StoreUnavailableError`, with the driver's error as its cause and
 * its code as `driverCode`; any other error (a bug, a bad request) is returned as it is.
 */
export function sqliteStoreError(error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return error;
  const fault = FAULTS.find(([primary]) => code === primary || code.startsWith(`${primary}_`));
  if (fault === undefined) return error;
  const [, reason, hint] = fault;
  const message = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(message, { reason, hint, driverCode: code, cause: error });
}

/** A file of the open database deleted or replaced: `message` says which, and how. */
export function fileMovedError(message: string): StoreUnavailableError {
  return new StoreUnavailableError(message, { reason: 'file-moved', hint: FILE_MOVED_HINT });
}
