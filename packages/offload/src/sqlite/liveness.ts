import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { makeDirectory } from './directory.js';

/** What a worker's name may be made of: it becomes a file name. */
const OWNER_PATTERN = /^[A-Za-z0-9_.-]{1,200}$/;

/** How often `register` retries when a prober deleted the lock file under it. */
const REGISTER_ATTEMPTS = 5;
/** How long (ms) `register` waits for a lock held by a prober. */
const REGISTER_WAIT = 200;

/** Throws unless `owner` is safe to use as a file name. */
export function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || !OWNER_PATTERN.test(owner)) {
    throw new TypeError(
      `the worker name ${JSON.stringify(owner)} is not allowed: use 1 to 200 characters from A-Z, a-z, 0-9, "_", "." and "-" (it names a lock file)`,
    );
  }
}

/**
 * Tells live workers from dead ones across processes that share one SQLite file.
 *
 * Each worker holds an open `BEGIN EXCLUSIVE` transaction on its own tiny SQLite database,
 * `<dir>/<owner>.lock`, for as long as it lives. The operating system releases that lock when the
 * process dies, however it dies (SIGKILL included), so a probe that can take the lock knows at
 * once that the owner is gone, without waiting for its leases to expire.
 */
export class WorkerLocks {
  private readonly held = new Map<string, Database.Database>();

  constructor(private readonly dir: string) {}

  /** True when `owner` was registered through this object and not unregistered since. */
  has(owner: string): boolean {
    return this.held.has(owner);
  }

  get owners(): string[] {
    return [...this.held.keys()];
  }

  /** Takes the lock of `owner` and keeps it until `unregister` or the process ends. */
  register(owner: string): void {
    checkOwner(owner);
    if (this.held.has(owner)) return;
    try {
      makeDirectory(this.dir);
    } catch (error) {
      throw new Error(
        `could not take the worker lock of "${owner}": ${(error as Error).message}. Check that the database's directory is writable`,
        { cause: error },
      );
    }
    const path = this.lockPath(owner);
    for (let attempt = 1; attempt <= REGISTER_ATTEMPTS; attempt++) {
      // A short wait lets a prober that holds the lock for an instant finish.
      const db = new Database(path, { timeout: REGISTER_WAIT });
      try {
        const before = statSync(path).ino;
        db.pragma('journal_mode = DELETE');
        db.exec('BEGIN EXCLUSIVE');
        // A prober that found the file unlocked deletes it while it still holds the lock; if that
        // happened between our open and our lock, we now lock a file nobody can see: start over.
        if (inode(path) === before) {
          this.held.set(owner, db);
          return;
        }
      } catch (error) {
        if (!isBusy(error) && !isMissing(error)) {
          db.close();
          throw new Error(
            `could not take the worker lock file ${path}: ${(error as Error).message}. Check that the directory is writable`,
            { cause: error },
          );
        }
      }
      db.close();
    }
    throw new Error(
      `could not take the worker lock file ${path}: it is held by another live process. Each process must use its own worker name`,
    );
  }

  /** Releases the lock of `owner` and deletes its file. Does nothing for an unknown owner. */
  unregister(owner: string): void {
    const db = this.held.get(owner);
    if (!db) return;
    this.held.delete(owner);
    removeLockFiles(this.lockPath(owner));
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
  }

  /**
   * False when the process that registered `owner` is gone: its lock file is missing, or can be
   * locked (then the file is deleted). True when the lock is held, or when that cannot be told.
   */
  isAlive(owner: string): boolean {
    if (this.held.has(owner)) return true;
    if (!OWNER_PATTERN.test(owner)) return false;
    const path = this.lockPath(owner);
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true, timeout: 0 });
    } catch (error) {
      return !isMissing(error);
    }
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch {
      // SQLITE_BUSY: the owner holds its lock, so it is alive. Anything else: we cannot tell,
      // so the owner counts as alive and its leases decide.
      db.close();
      return true;
    }
    // Delete the file while holding its lock, so a worker registering under the same name at this
    // moment either locks after us and sees its file gone, or is seen alive by the next probe.
    removeLockFiles(path);
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
    return false;
  }

  /** Releases every lock still held. */
  unregisterAll(): void {
    for (const owner of this.owners) this.unregister(owner);
  }

  private lockPath(owner: string): string {
    return join(this.dir, `${owner}.lock`);
  }
}

function inode(path: string): number | null {
  try {
    return statSync(path).ino;
  } catch {
    return null;
  }
}

function removeLockFiles(path: string): void {
  rmSync(path, { force: true });
  rmSync(`${path}-journal`, { force: true });
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CANTOPEN' || code === 'ENOENT';
}
