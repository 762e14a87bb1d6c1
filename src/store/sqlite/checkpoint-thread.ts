/**
 * The checkpoint thread of a SQLite store (see checkpointer.ts): every few milliseconds, on a
 * connection of its own, it copies what the write-ahead log gained into the database file.
 */
import { closeSync, fdatasyncSync, openSync, statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointThreadData {
  path: string;
  /** The identity of the file the store has open: the thread must not open another. */
  ino: number;
  dev: number;
  intervalMs: number;
}

/** What the thread posts when it stops on an error; the store then checkpoints by itself. */
export interface CheckpointThreadFailure {
  message: string;
}

const { path, ino, dev, intervalMs } = workerData as CheckpointThreadData;
const port = parentPort!;

let db: Database.Database | undefined;
let fd: number | undefined;
let timer: NodeJS.Timeout | undefined;

function stop(): void {
  clearInterval(timer);
  db?.close();
  if (fd !== undefined) closeSync(fd);
  port.close();
}

function fail(error: unknown): void {
  port.postMessage({ message: (error as Error).message } satisfies CheckpointThreadFailure);
  stop();
}

try {
  db = new Database(path, { fileMustExist: true });
  // The same guarantee as the store's connection: the log is synced before pages are copied, and
  // the database file once they all are.
  db.pragma('synchronous = NORMAL');
  fd = openSync(path, 'r');
  const now = statSync(path);
  if (now.ino !== ino || now.dev !== dev) {
    throw new Error(`${path} is no longer the database file the store opened`);
  }
  const checkpoint = db.prepare<[], { checkpointed: number }>('PRAGMA wal_checkpoint(PASSIVE)');
  let backfilled = 0;
  timer = setInterval(() => {
    try {
      const { checkpointed } = checkpoint.get()!;
      // Pages copied by this pass go to the disk now, from this thread: the checkpoint that
      // completes (on the store's connection, see checkpointer.ts) then has little left to sync.
      if (checkpointed > 0 && checkpointed !== backfilled) fdatasyncSync(fd!);
      backfilled = checkpointed;
    } catch (error) {
      fail(error);
    }
  }, intervalMs);
  port.on('message', stop);
} catch (error) {
  fail(error);
}
