import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { OffloadError } from '../errors/offload-error.js';
import type { Logger } from '../types.js';
import { Checkpointer } from './checkpointer.js';
import { Counter } from './counter.js';
import { DatabaseFiles } from './database-files.js';
import { makeDirectory } from './directory.js';
import { createFeedTransactions, type FeedTransactions } from './feeds.js';
import { prepareGroupStatements, type GroupStatements } from './groups.js';
import { WorkerLocks } from './liveness.js';
import { migrate } from './migrations.js';
import { createRecordTransactions, type RecordTransactions } from './records.js';
import { createScheduleTransactions, type ScheduleTransactions } from './schedules.js';
import { prepareStatements, type ClaimStatement, type Statements } from './statements.js';
import { createTransactions, type Transactions, type WriteGuard } from './transactions.js';
import { WriteHealth } from './write-health.js';

/** An open SQLite store: its connection, statements, and what watches over the database. */
export interface Connection {
  db: Database.Database;
  statements: Statements;
  groups: GroupStatements;
  claims: Map<number, ClaimStatement>;
  /** The group key the last claim took from: the next one visits the keys after it first. */
  lastKey: string;
  transactions: Transactions;
  schedules: ScheduleTransactions;
  records: RecordTransactions;
  feeds: FeedTransactions;
  locks: WorkerLocks | null;
  /** Null for `:memory:`. */
  files: DatabaseFiles | null;
  checkpointer: Checkpointer | null;
  counter: Counter;
  health: WriteHealth;
}

/**
 * Opens the database at `path` (`:memory:` for a private one) in WAL mode, migrated, with its
 * statements prepared. Throws `STORE_NOT_FOUND` or `STORE_OPEN_FAILED` saying what to check.
 */
export function openConnection(
  path: string,
  busyTimeout: number,
  mustExist: boolean,
  logger: Logger | undefined,
): Connection {
  const inMemory = path === ':memory:';
  let db: Database.Database;
  let files: DatabaseFiles | null = null;
  try {
    if (!inMemory) prepareFile(path, mustExist);
    db = new Database(path, { timeout: busyTimeout, fileMustExist: mustExist && !inMemory });
  } catch (error) {
    throw error instanceof OffloadError ? error : openError(path, error);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db, path);
    const statements = prepareStatements(db);
    const groups = prepareGroupStatements(db);
    files = inMemory ? null : new DatabaseFiles(resolve(path));
    const checkpointer = files ? new Checkpointer(db, files, logger) : null;
    const health = new WriteHealth(db, path, logger);
    const guard: WriteGuard = {
      before() {
        files?.check();
        checkpointer?.wrote();
      },
      succeeded: () => health.succeeded(),
      failed: (error) => health.failed(error),
    };
    return {
      db,
      statements,
      groups,
      claims: new Map(),
      lastKey: '',
      transactions: createTransactions(db, statements, groups, guard),
      schedules: createScheduleTransactions(db, statements, guard),
      records: createRecordTransactions(db, guard),
      feeds: createFeedTransactions(db, guard),
      files,
      checkpointer,
      counter: new Counter(statements, files, logger),
      health,
      locks: inMemory ? null : new WorkerLocks(`${path}.workers`),
    };
  } catch (error) {
    db.close();
    files?.close();
    throw error instanceof OffloadError ? error : openError(path, error);
  }
}

/** Releases the workers' locks, stops the threads and closes the database: every step is tried. */
export async function closeConnection(connection: Connection, path: string): Promise<void> {
  const errors: unknown[] = [];
  try {
    connection.locks?.unregisterAll();
  } catch (error) {
    errors.push(error);
  }
  try {
    await connection.checkpointer?.close();
    await connection.counter.close();
    connection.db.close();
    // Only now: closing a descriptor of the file drops the process's locks on it.
    connection.files?.close();
  } catch (error) {
    errors.push(error);
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1)
    throw new AggregateError(errors, `closing the SQLite store ${path} failed`);
}

/**
 * Checks the path before SQLite opens it (SQLite would only say "unable to open database
 * file"), and creates its directory unless the database must exist.
 */
function prepareFile(path: string, mustExist: boolean): void {
  const found = statSync(path, { throwIfNoEntry: false });
  if (found?.isDirectory()) {
    throw new Error(`it is a directory, not a database file (such as ${join(path, 'offload.db')})`);
  }
  if (found) return;
  if (mustExist) {
    const absolute = resolve(path);
    throw new OffloadError(
      'STORE_NOT_FOUND',
      `there is no SQLite database at ${path}${absolute === path ? '' : ` (${absolute})`}: the file does not exist`,
    );
  }
  makeDirectory(dirname(resolve(path)));
}

function openError(path: string, error: unknown): OffloadError {
  return new OffloadError(
    'STORE_OPEN_FAILED',
    `could not open the SQLite database ${path}: ${(error as Error).message}. Check that the path is right, that its directory can be created and written by this process, and that the file is a SQLite database`,
    { cause: error },
  );
}
