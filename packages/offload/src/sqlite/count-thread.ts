/**
 * The count thread of a SQLite store (see counter.ts): counts the tasks by state and name on a
 * connection of its own, so that a count of a large store never holds the event loop.
 */
import { statSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { COUNTS, type TaskCount } from './statements.js';

export interface CountThreadData {
  path: string;
  /** The identity of the file the store has open: the thread must not open another. */
  ino: number;
  dev: number;
}

/** What the thread posts for each `'count'` it is sent. */
export type CountThreadMessage = { counts: TaskCount[] } | { error: string };

const { path, ino, dev } = workerData as CountThreadData;
const port = parentPort!;

let db: Database.Database | undefined;
try {
  db = new Database(path, { fileMustExist: true });
  db.pragma('query_only = ON');
  const now = statSync(path);
  if (now.ino !== ino || now.dev !== dev) {
    throw new Error(`${path} is no longer the database file the store opened`);
  }
  const counts = db.prepare<[], TaskCount>(COUNTS);
  port.on('message', () => {
    try {
      port.postMessage({ counts: counts.all() } satisfies CountThreadMessage);
    } catch (error) {
      port.postMessage({ error: (error as Error).message } satisfies CountThreadMessage);
    }
  });
} catch (error) {
  db?.close();
  port.postMessage({ error: (error as Error).message } satisfies CountThreadMessage);
  port.close();
}
