/**
 * Errors of a database driver that mean the store cannot serve right now (disk full, read-only,
 * I/O error, file gone, connection lost), as opposed to a bug or a bad request, each with what an
 * operator should check. The HTTP side answers them with a 503 instead of a 500.
 */

/** SQLite's primary result codes (extended ones, like `SQLITE_IOERR_WRITE`, start with them). */
const SQLITE_HINTS: [prefix: string, hint: string][] = [
  ['SQLITE_FULL', 'the disk of the SQLite database is full: free space on it'],
  [
    'SQLITE_READONLY',
    'the SQLite database cannot be written: check that its file system is mounted read-write and that the process may write the file, its -wal and -shm files and their directory',
  ],
  [
    'SQLITE_IOERR',
    'the SQLite database could not be read or written (an I/O error): check the disk and the file system it is on',
  ],
  [
    'SQLITE_CANTOPEN',
    'the SQLite database file cannot be opened: check that it and its directory exist and are writable',
  ],
  [
    'SQLITE_BUSY',
    'the SQLite database is locked by another process: check what else holds it open',
  ],
  [
    'SQLITE_LOCKED',
    'the SQLite database is locked by another process: check what else holds it open',
  ],
  [
    'SQLITE_CORRUPT',
    'the SQLite database file is damaged: restore it from a backup, or check the disk',
  ],
  [
    'SQLITE_NOTADB',
    'the file at the SQLite database path is not a database (replaced?): check DATABASE_URL and the file',
  ],
  ['SQLITE_PROTOCOL', 'the SQLite database file is locked in a way SQLite cannot resolve: retry'],
];

/** Node's network errors and PostgreSQL's SQLSTATE codes for a server that is away or full. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const POSTGRES_HINTS: [prefix: string, hint: string][] = [
  ['08', 'the connection to PostgreSQL failed: check that the server is up and reachable'],
  ['57P0', 'PostgreSQL is shutting down or restarting: check the database server'],
  [
    '53',
    'PostgreSQL is out of a resource (disk, memory or connections): check the database server',
  ],
];

/** What to check when `error` is a store that cannot serve now; null for any other error. */
export function storeFaultHint(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (code === 'STORE_FILE_MOVED') {
    return 'the database file was deleted or replaced under the running process: restore it, or restart the process to use the file now at that path';
  }
  if (code.startsWith('SQLITE_')) {
    return SQLITE_HINTS.find(([prefix]) => code.startsWith(prefix))?.[1] ?? null;
  }
  if (NETWORK_CODES.has(code)) {
    return 'the database server cannot be reached: check that it is up and reachable';
  }
  if (/^[0-9A-Z]{5}$/.test(code)) {
    return POSTGRES_HINTS.find(([prefix]) => code.startsWith(prefix))?.[1] ?? null;
  }
  return null;
}

/** A store that cannot serve now: its driver's code and what to check. */
export interface StoreFault {
  code: string;
  hint: string;
  /** The driver's message. */
  message: string;
}

/**
 * The first error along `error` and its causes (an error the service wraps the driver's in) that
 * is a store that cannot serve now; null when none is.
 */
export function findStoreFault(error: unknown): StoreFault | null {
  let current = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth++) {
    const hint = storeFaultHint(current);
    if (hint !== null) {
      const { code, message } = current as { code: string; message?: unknown };
      return { code, hint, message: typeof message === 'string' ? message : String(current) };
    }
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
