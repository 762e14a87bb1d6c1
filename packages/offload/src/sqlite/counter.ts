import type { Worker } from 'node:worker_threads';
import { startThread } from '../threads.js';
import type { Logger } from '../types.js';
import type { CountThreadData, CountThreadMessage } from './count-thread.js';
import type { Statements, TaskCount } from './statements.js';

/**
 * Up to this many stored tasks (as the span of their ids tells, an upper bound), a count runs on
 * the store's own connection: it takes a few milliseconds, less than asking a thread.
 */
export const COUNT_IN_THREAD_ABOVE = 20_000;

const ENTRY = new URL('./count-thread.js', import.meta.url);

/**
 * Counts the tasks by state and name. A count reads an index entry per stored task: a million
 * tasks take about half a second, which on the store's connection would hold the event loop, and
 * every request with it, each time the dashboard or a metrics scrape asks. So a large store is
 * counted on a thread of its own, started at its first such count, on a connection that reads the
 * same committed state as the store's (WAL readers never wait for the writer); counts asked for
 * while one is under way share it. Should the thread fail, that count runs on the store's
 * connection and a warning says why; the next one starts a new thread.
 */
export class Counter {
  private thread: Worker | null = null;
  private counting: Promise<TaskCount[]> | null = null;

  constructor(
    private readonly statements: Pick<Statements, 'counts' | 'idSpan'>,
    /** The database file; null for `:memory:`, which only its own connection can read. */
    private readonly file: CountThreadData | null,
    private readonly logger: Logger | undefined,
    /** The thread's module: for tests. */
    private readonly entry = ENTRY,
  ) {}

  count(): Promise<TaskCount[]> {
    const { counts, idSpan } = this.statements;
    if (this.file === null || (idSpan.get() ?? 0) <= COUNT_IN_THREAD_ABOVE) {
      return Promise.resolve(counts.all());
    }
    return (this.counting ??= this.ask(this.file)
      .catch((error: unknown) => {
        this.logger?.warn(
          { path: this.file?.path, err: error },
          'counting the tasks on a thread failed; counted them on the event loop this time',
        );
        return counts.all();
      })
      .finally(() => {
        this.counting = null;
      }));
  }

  /** Stops the thread; a count under way fails. */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = null;
    await thread?.terminate();
  }

  private ask(file: CountThreadData): Promise<TaskCount[]> {
    const thread = (this.thread ??= this.start(file));
    return new Promise((resolve, reject) => {
      const answered = (message: CountThreadMessage) => {
        settled();
        if ('counts' in message) resolve(message.counts);
        else fail(new Error(`the count thread failed: ${message.error}`));
      };
      const exited = () => {
        settled();
        fail(new Error('the count thread exited'));
      };
      const fail = (error: Error) => {
        // The next count starts a new thread.
        if (this.thread === thread) void this.close();
        reject(error);
      };
      const failed = (error: Error) => {
        settled();
        fail(error);
      };
      const settled = () => {
        thread.off('message', answered).off('error', failed).off('exit', exited);
      };
      thread.once('message', answered).once('error', failed).once('exit', exited);
      thread.postMessage('count');
    });
  }

  private start(file: CountThreadData): Worker {
    const { path, ino, dev } = file;
    const data: CountThreadData = { path, ino, dev };
    const thread = startThread(this.entry, { workerData: data, stdout: false, stderr: false });
    thread.unref();
    return thread;
  }
}
