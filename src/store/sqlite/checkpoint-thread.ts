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
  /** A log this long is worth starting over: the thread says when a pass copied all of it. */
  restartPages: number;
}

/**
 * What the thread posts: `failed` when it stops on an error (the store then checkpoints by
 * itself); `caught-up` when a pass copied a log of `restartPages` or more to its end, so that the
 * store's connection has only the commits made during that pass left to copy before the log can
 * start over.
 */
export type CheckpointThreadMessage = { type: 'failed'; message: string } | { type: 'caught-up' };

const { path, ino, dev, intervalMs, restartPages } = workerData as CheckpointThreadData;
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
  port.postMessage({
    type: 'failed',
    message: (error as Error).message,
  } satisfies CheckpointThreadMessage);
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
  const checkpoint = db.prepare<[], { log: number; checkpointed: number }>(
    'PRAGMA wal_checkpoint(PASSIVE)',
  );
  let backfilled = 0;
  timer = setInterval(() => {
    try {
      const { log, checkpointed } = checkpoint.get()!;
      // Pages copied by this pass go to the disk now, from this thread: the checkpoint that
      // completes (on the store's connection, see checkpointer.ts) then has little left to sync.
      const copied = checkpointed > 0 && checkpointed !== backfilled;
      if (copied) fdatasyncSync(fd!);
      backfilled = checkpointed;
      // Only after a pass that copied something: an idle store's log waits for its next commit
      // to start over, and the store has nothing new to copy meanwhile.
      if (copied && log >= restartPages && checkpointed === log) {
        port.postMessage({ type: 'caught-up' } satisfies CheckpointThreadMessage);
      }
    } catch (error) {
      fail(error);
    }
  }, intervalMs);
  port.on('message', stop);
} catch (error) {
  fail(error);
}
