import { statSync, watch, type FSWatcher } from 'node:fs';
import { OffloadError } from '../../errors/offload-error.js';

/**
 * Tells whether the file at a path is still the one a connection opened. On Linux a deleted or
 * replaced database stays readable and writable through the open handle, but what is written
 * there is lost once the process ends (and other processes see another file), so writes must
 * refuse instead. A `stat` costs about as much as a tenth of a small write transaction: it is
 * made only after the file system reported something about the file (inotify, through
 * `fs.watch`), or before every write where watching is not available.
 */
export class FileIdentity {
  readonly ino: number;
  readonly dev: number;
  private readonly watcher: FSWatcher | null;
  /** Something happened to the file since the last check. */
  private suspect = false;

  constructor(readonly path: string) {
    ({ ino: this.ino, dev: this.dev } = statSync(path));
    this.watcher = this.watchFile();
  }

  /** Throws `STORE_FILE_MOVED` when the file at the path is no longer the one opened. */
  check(): void {
    if (this.watcher !== null && !this.suspect) return;
    const now = statSync(this.path, { throwIfNoEntry: false });
    if (now?.ino === this.ino && now.dev === this.dev) {
      this.suspect = false;
      return;
    }
    throw new OffloadError(
      'STORE_FILE_MOVED',
      `the SQLite database ${this.path} was ${now ? 'replaced by another file' : 'deleted'} while this process had it open; nothing more is written to it, as it would be lost. Restart the process to open the file now at that path`,
    );
  }

  close(): void {
    this.watcher?.close();
  }

  private watchFile(): FSWatcher | null {
    try {
      const watcher = watch(this.path, { persistent: false }, () => (this.suspect = true));
      // A watcher that fails leaves the check to a stat before every write.
      watcher.on('error', () => {
        this.suspect = true;
        watcher.close();
      });
      return watcher;
    } catch {
      return null;
    }
  }
}
