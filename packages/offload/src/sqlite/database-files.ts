import {
  closeSync,
  openSync,
  statSync,
  unwatchFile,
  watch,
  watchFile,
  type FSWatcher,
} from 'node:fs';
import { fileMovedError } from './errors.js';

/** How often (ms) the `-wal` and `-shm` files are checked, see `watchFiles`. */
const POLL_MS = 200;

/** The files of a database in WAL mode, as `suffix` of the database's path. */
const FILES = [
  { suffix: '', what: 'database file' },
  { suffix: '-wal', what: 'write-ahead log (-wal)' },
  { suffix: '-shm', what: 'shared-memory index (-shm)' },
] as const;

interface Identity {
  path: string;
  what: string;
  ino: number;
  dev: number;
}

/**
 * The files of an open SQLite database in WAL mode: the database, its `-wal` and its `-shm`.
 *
 * **Identity.** On Linux a deleted or replaced file stays readable and writable through the
 * handles SQLite has open, but what is written there is lost once the process ends, and other
 * processes see another file: so `check` throws before a write when any of the three is no longer
 * the file the connection opened. A `stat` costs about a tenth of a small write transaction, so
 * the files are stat'ed only once something reported a change (see `watchFiles`; a `-wal` or
 * `-shm` deleted or replaced is seen within 200 ms), or before every write where the database file
 * cannot be watched. `ping` (`/readyz`) stats them every time.
 *
 * **One descriptor, closed last.** SQLite's locks are POSIX record locks, which the kernel drops
 * for the whole process when *any* descriptor of the file is closed. A process that opened and
 * closed a descriptor of the database while its connection was open would lose its shared lock:
 * the next process to close the database would take itself for the last user, checkpoint, and
 * delete the live `-wal` and `-shm`, and every commit after that would go to deleted files. So
 * the one descriptor the store needs (the checkpoint thread syncs the database file through it) is
 * opened here once and closed by `close`, which the store calls after its connection is closed.
 */
export class DatabaseFiles {
  /** A read-only descriptor of the database file, open until `close`. */
  readonly fd: number;
  readonly ino: number;
  readonly dev: number;
  private readonly files: Identity[];
  /** Null where the database file cannot be watched, or its watcher failed: a stat before every write. */
  private watcher: FSWatcher | null;
  /** One of the files may have changed since the last check. */
  private suspect = false;

  /** Call once the connection has opened the database in WAL mode (all three files exist). */
  constructor(readonly path: string) {
    this.files = FILES.map(({ suffix, what }) => {
      const { ino, dev } = statSync(path + suffix);
      return { path: path + suffix, what, ino, dev };
    });
    ({ ino: this.ino, dev: this.dev } = this.files[0]!);
    this.fd = openSync(path, 'r');
    this.watcher = this.watchFiles();
  }

  /**
   * Throws a `StoreUnavailableError` (reason `file-moved`) when a file at its path is no longer
   * the one opened. Before a write it stats them only when something reported a change; `always`
   * stats them now.
   */
  check(always = false): void {
    if (!always && this.watcher !== null && !this.suspect) return;
    for (const file of this.files) {
      const now = statSync(file.path, { throwIfNoEntry: false });
      if (now?.ino === file.ino && now.dev === file.dev) continue;
      throw fileMovedError(
        `the SQLite ${file.what} ${file.path} was ${now ? 'replaced by another file' : 'deleted'} while this process had it open; nothing more is written to the database, as it would be lost. Restart the process to open the database now at that path`,
      );
    }
    this.suspect = false;
  }

  /** Stops watching and closes the descriptor: only once the store's connection is closed. */
  close(): void {
    this.watcher?.close();
    for (const file of this.files.slice(1)) unwatchFile(file.path);
    closeSync(this.fd);
  }

  /**
   * The database file through inotify: it changes only when a checkpoint writes it, so events are
   * rare. The `-wal` is written by every commit, so an inotify watch on it (or on the directory)
   * would wake the event loop once a commit, about 15% of a small write transaction's cost: it and
   * the `-shm` are stat'ed every POLL_MS instead, on libuv's threads (`fs.watchFile`).
   */
  private watchFiles(): FSWatcher | null {
    for (const file of this.files.slice(1)) {
      watchFile(file.path, { persistent: false, interval: POLL_MS }, (now) => {
        if (now.ino !== file.ino || now.dev !== file.dev) this.suspect = true;
      });
    }
    try {
      const watcher = watch(this.path, { persistent: false }, () => (this.suspect = true));
      watcher.on('error', () => {
        watcher.close();
        this.watcher = null;
      });
      return watcher;
    } catch {
      return null;
    }
  }
}
