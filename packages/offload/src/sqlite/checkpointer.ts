import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { startThread } from '../threads.js';
import type { Logger } from '../types.js';
import type { CheckpointThreadData, CheckpointThreadMessage } from './checkpoint-thread.js';

/** SQLite's own: a checkpoint by the committing connection once the log holds this many pages. */
const INLINE_CHECKPOINT_PAGES = 1000;
/**
 * With the thread running: once the log holds this many pages and a pass of the thread copied them
 * all, the store's connection copies the few committed since, and the log starts over.
 */
const RESTART_PAGES = 4000;
/** With the thread running, SQLite's own checkpoint: only should the thread fall far behind. */
const SAFETY_CHECKPOINT_PAGES = 4 * RESTART_PAGES;
/** Write transactions before the thread starts: a store that hardly writes never needs it. */
export const START_AFTER_WRITES = 500;
/**
 * Between the thread's passes. Each pass copies the latest version of every page written since
 * the last: passes every 20 ms copied the same hot pages so often that, on one core shared with
 * the event loop, the service answered about 10% fewer requests a second at full load.
 */
const INTERVAL_MS = 100;
const STOP_TIMEOUT_MS = 2000;
/**
 * After the thread stopped on an error (a full disk, no descriptors left), how long (ms) before
 * the next write starts it again: its checkpoints are what let the log start over and shrink.
 */
export const RESTART_DELAY_MS = 10_000;

const ENTRY = new URL('./checkpoint-thread.js', import.meta.url);

/**
 * Keeps SQLite's checkpoints off the event loop. In WAL mode every commit appends pages to the
 * log, and by default the connection whose commit takes the log past 1000 pages copies them all
 * into the database file: measured here, 4–6 ms with the event loop blocked, several times a
 * second under load. At 2,000 requests/s this was about 100 of the 160 stalls over 4 ms counted
 * in 10 s, the largest source of the service's tail latency; garbage collection was the next.
 *
 * Once the store has written a while, a thread of its own copies the log into the database file
 * every 100 ms (a PASSIVE checkpoint never blocks the store's writes). A checkpoint only lets the
 * log start over if no commit came in meanwhile, which under steady load is rare: so when a pass
 * copied a log of 4000 pages or more to its end, the thread copies what was committed meanwhile in
 * a few shorter passes and says so, and the store's connection copies what was committed during
 * the last one (about 1 ms of commits and two short syncs), after which the next commit starts
 * the log over. Left to SQLite, that connection copied up to a pass's worth of pages at 4000:
 * 5–15 ms with the event loop blocked, every ~250 ms while a backlog drained. Should the thread
 * fail, the store checkpoints by itself meanwhile, a warning says so, and the first write 10 s
 * later starts the thread again.
 */
export class Checkpointer {
  private writes = 0;
  private thread: Worker | null = null;
  private exited: Promise<void> | null = null;
  /** When (ms since the epoch) the thread may start again after it failed. */
  private restartAt = 0;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    /** The database file, and the store's descriptor of it (see database-files.ts). */
    private readonly file: { path: string; ino: number; dev: number; fd: number },
    private readonly logger: Logger | undefined,
    /** The thread's module: for tests. */
    private readonly entry = ENTRY,
    /** The time, for tests: `Date.now` by default. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a write transaction; starts the thread at the 500th, or again once it may restart. */
  wrote(): void {
    if (this.thread !== null || this.closed) return;
    this.writes += 1;
    if (this.writes >= START_AFTER_WRITES && this.now() >= this.restartAt) this.start();
  }

  /** Stops the thread (it finishes the pass it is in). */
  async close(): Promise<void> {
    this.closed = true;
    const thread = this.thread;
    if (!thread) return;
    this.thread = null;
    thread.postMessage('stop');
    const timer = setTimeout(() => void thread.terminate(), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private start(): void {
    const { path, ino, dev, fd } = this.file;
    const data: CheckpointThreadData = {
      path,
      ino,
      dev,
      fd,
      intervalMs: INTERVAL_MS,
      restartPages: RESTART_PAGES,
    };
    let thread: Worker;
    try {
      thread = startThread(this.entry, { workerData: data, stdout: false, stderr: false });
    } catch (error) {
      this.fallBack((error as Error).message);
      return;
    }
    thread.unref();
    this.thread = thread;
    this.exited = new Promise((resolve) => thread.once('exit', () => resolve()));
    thread.on('message', (message: CheckpointThreadMessage) => {
      if (message.type === 'caught-up') this.finish();
      else this.fallBack(message.message);
    });
    thread.on('error', (error) => this.fallBack(error.message));
    thread.once('exit', () => {
      if (this.thread === thread) this.fallBack('the thread exited');
    });
    this.db.pragma(`wal_autocheckpoint = ${SAFETY_CHECKPOINT_PAGES}`);
  }

  /** The thread copied a long log to its end: copy what came since, so the log starts over. */
  private finish(): void {
    if (!this.db.open) return;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (error) {
      this.logger?.warn(
        { path: this.file.path, err: error },
        'a SQLite checkpoint on the store connection failed; the log grows until the next one succeeds',
      );
    }
  }

  private fallBack(reason: string): void {
    if (this.thread) void this.thread.terminate();
    this.thread = null;
    this.restartAt = this.now() + RESTART_DELAY_MS;
    if (!this.db.open) return;
    this.db.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_PAGES}`);
    this.logger?.warn(
      { path: this.file.path, reason, restartInMs: RESTART_DELAY_MS },
      'the SQLite checkpoint thread stopped; checkpoints run on the event loop meanwhile, which lengthens some answers by a few ms. It starts again with the first write 10 s from now',
    );
  }
}
