import {
  integerOption,
  InvalidOptionError,
  MAX_TIMER_DELAY,
  rejectUnknownKeys,
} from '../options-check.js';
import type { ListFilter, Logger, Task, TaskPage } from '../types.js';
import {
  transactionsUnsupported,
  type Change,
  type ClaimedTask,
  type ClaimRequest,
  type EnqueueResult,
  type FireRequest,
  type FireResult,
  type Lease,
  type NewRecord,
  type NewSchedule,
  type NewTask,
  type ProgressUpdate,
  type PausedName,
  type RecordQuery,
  type Rescue,
  type Settlement,
  type SqlClient,
  type Store,
  type StoreStats,
  type StoredRecord,
  type StoredSchedule,
} from '../store/store.js';
import { closeConnection, openConnection, type Connection } from './connection.js';
import { sqliteStoreError } from './errors.js';
import { pausedNames } from './groups.js';
import { checkOwner } from './liveness.js';
import { byClaimOrder, toClaimedTask, toTask } from './rows.js';
import { prepareClaim, type ClaimStatement, type Statements } from './statements.js';
import { parseCursor, prefixEnd } from '../store/ids.js';
import { rowId } from './transactions.js';
import type {
  AppendedFeedEntry,
  FeedEntry,
  FeedQuery,
  FeedRange,
  NewFeedEntry,
} from '../store/feeds.js';

/** Options of `sqliteStore`. */
export interface SqliteStoreOptions {
  /** The database file; its directory is created when missing. `:memory:` for a private one. */
  path: string;
  /**
   * Open an existing database only: `open()` fails with `STORE_NOT_FOUND` instead of creating a
   * missing file and its directory, for tools that read or change tasks and must not make an
   * empty database of a mistyped path. Default false.
   */
  mustExist?: boolean;
  /** How long (ms) a write waits for another process's transaction before failing; default 5000. */
  busyTimeout?: number;
  /** Where trouble that does not fail a call is reported (the checkpoint thread stopping). */
  logger?: Logger;
}

const DEFAULT_BUSY_TIMEOUT = 5000;
/** Larger than any row id: the cursor of the first page. */
const NO_CURSOR = Number.MAX_SAFE_INTEGER;
/** SQLite sorts every BLOB after every TEXT. */
const ABOVE_ALL_TEXT = Buffer.alloc(0);

/**
 * The embedded store: one SQLite file in WAL mode, shared safely by the processes of one host.
 *
 * Workers announce themselves with `registerWorker`, which holds a lock file next to the database
 * (`<path>.workers/<owner>.lock`) for as long as the process lives; `rescue` hands back the tasks
 * of an owner whose lock is free at once, without waiting for their leases to expire. So on a
 * file database, `claim` refuses an owner that was not registered through this store.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  /** The database file, as given. */
  readonly path: string;
  private readonly busyTimeout: number;
  private readonly mustExist: boolean;
  private readonly logger: Logger | undefined;
  private connection: Connection | null = null;
  /** Workers of a `:memory:` database, which no other process can see. */
  private readonly memoryOwners = new Set<string>();

  constructor(options: SqliteStoreOptions) {
    rejectUnknownKeys('sqliteStore options', options, [
      'path',
      'mustExist',
      'busyTimeout',
      'logger',
    ]);
    if (typeof options.path !== 'string' || options.path === '') {
      throw new InvalidOptionError(
        'sqliteStore.path',
        'must be the path of the database file, e.g. ./data/offload.db',
      );
    }
    // A URL here would be taken as a relative path and made into directories named "file:…".
    if (/^(file|sqlite):/.test(options.path)) {
      throw new InvalidOptionError(
        'sqliteStore.path',
        `must be a path, not a URL, got ${JSON.stringify(options.path)}: give the file's path, or the URL to openStore()`,
      );
    }
    this.path = options.path;
    this.busyTimeout = integerOption(
      'sqliteStore.busyTimeout',
      options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT,
      0,
      MAX_TIMER_DELAY,
    );
    this.mustExist = options.mustExist ?? false;
    this.logger = options.logger;
  }

  async open(): Promise<void> {
    this.connection ??= openConnection(this.path, this.busyTimeout, this.mustExist, this.logger);
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    if (connection) await closeConnection(connection, this.path);
  }

  async ping(): Promise<void> {
    this.use(({ db, files, health }) => {
      files?.check(true);
      health.check();
      db.prepare('SELECT 1').get();
    });
  }

  /**
   * Takes the lock file of `owner` (1 to 200 of `A-Za-z0-9_.-`; unique per process, e.g. host,
   * pid and a random part). Other processes see the owner alive while this store holds it.
   */
  async registerWorker(owner: string): Promise<void> {
    checkOwner(owner);
    this.use(({ locks }) => {
      if (locks) locks.register(owner);
      else this.memoryOwners.add(owner);
    });
  }

  /** Releases and deletes the lock file of `owner`; its running tasks may then be rescued. */
  async unregisterWorker(owner: string): Promise<void> {
    this.use(({ locks }) => {
      if (locks) locks.unregister(owner);
      else this.memoryOwners.delete(owner);
    });
  }

  async enqueue(tasks: readonly NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]> {
    if (transaction !== undefined) throw transactionsUnsupported(this.kind);
    return this.use(({ transactions }) => transactions.enqueue(tasks));
  }

  async claim(request: ClaimRequest): Promise<ClaimedTask[]> {
    return this.use((connection) => this.claimOn(connection, request));
  }

  private claimOn(connection: Connection, request: ClaimRequest): ClaimedTask[] {
    const { owner, names, limit } = request;
    if (connection.locks && !connection.locks.has(owner)) {
      throw new Error(
        `SqliteStore.claim: the worker "${owner}" is not registered in this store; call registerWorker("${owner}") first, or other processes would take its tasks as abandoned`,
      );
    }
    if (names.length === 0 || limit <= 0) return [];
    // A read first: an idle poll finds nothing due without taking the write lock, which other
    // processes on the file would have to wait for.
    if (
      connection.statements.duePriorities.get(request.now) === undefined &&
      connection.groups.due.get(request.now) === undefined
    )
      return [];
    const { rows, after } = connection.transactions.claim(
      (count) => this.claimStatement(connection, count),
      request,
      connection.lastKey,
    );
    connection.lastKey = after;
    rows.sort(byClaimOrder);
    return rows.map((row) => toClaimedTask(row, request.now));
  }

  private claimStatement(connection: Connection, count: number): ClaimStatement {
    let statement = connection.claims.get(count);
    if (!statement) {
      statement = prepareClaim(connection.db, count);
      connection.claims.set(count, statement);
    }
    return statement;
  }

  async settle(settlements: readonly Settlement[]): Promise<boolean[]> {
    return this.use(({ transactions }) => transactions.settle(settlements));
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<string[]> {
    return this.use(({ transactions }) => transactions.renew(leases, expiresAt));
  }

  async progress(updates: readonly ProgressUpdate[]): Promise<string[]> {
    return this.use(({ transactions }) => transactions.progress(updates));
  }

  async rescue(now: number): Promise<Rescue[]> {
    return this.use(({ statements, locks, transactions }) => {
      // Probing touches other files, so it happens before the transaction; the lease fence in it
      // keeps a task that changed hands meanwhile from being rescued twice.
      const deadOwners = locks
        ? statements.runningOwners.all().filter((owner) => !locks.isAlive(owner))
        : [];
      return transactions.rescue(now, deadOwners);
    });
  }

  async get(id: string): Promise<Task | null> {
    const row = this.use(({ statements }) => statements.byId.get(rowId(id)));
    return row ? toTask(row) : null;
  }

  async list(filter: ListFilter & { limit: number }): Promise<TaskPage> {
    return this.use(({ statements }) => listPage(statements, filter));
  }

  async cancel(id: string, now: number): Promise<Change | null> {
    return this.use(({ transactions }) => transactions.cancel(rowId(id), now));
  }

  async retry(id: string, now: number): Promise<Change | null> {
    return this.use(({ transactions }) => transactions.retry(rowId(id), now));
  }

  async prune(before: number, limit: number): Promise<number> {
    return this.use(({ transactions }) => transactions.prune(before, limit));
  }

  /** Counts every task (a scan of the table: about 0.25 s per million tasks). */
  async stats(now: number): Promise<StoreStats> {
    const { counter, statements } = this.connected();
    try {
      const counts = await counter.count();
      return { counts, oldestDue: statements.oldestDue.get(now, now) ?? null };
    } catch (error) {
      throw sqliteStoreError(error);
    }
  }

  async setSchedule(schedule: NewSchedule, now: number): Promise<StoredSchedule> {
    return this.use(({ schedules }) => schedules.set(schedule, now));
  }

  async getSchedule(name: string): Promise<StoredSchedule | null> {
    return this.use(({ schedules }) => schedules.get(name));
  }

  async listSchedules(): Promise<StoredSchedule[]> {
    return this.use(({ schedules }) => schedules.list());
  }

  async pauseSchedule(name: string, now: number): Promise<StoredSchedule | null> {
    return this.use(({ schedules }) => schedules.pause(name, now));
  }

  async resumeSchedule(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): Promise<StoredSchedule | null> {
    return this.use(({ schedules }) => schedules.resume(name, now, next));
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.use(({ schedules }) => schedules.remove(name));
  }

  /** One IMMEDIATE transaction: processes sharing the file fire each due time once. */
  async fireSchedules(request: FireRequest): Promise<FireResult> {
    return this.use(({ schedules }) => schedules.fire(request));
  }

  async pause(name: string, now: number): Promise<boolean> {
    return this.use(({ transactions }) => transactions.pause(name, now));
  }

  async resume(name: string): Promise<boolean> {
    return this.use(({ transactions }) => transactions.resume(name));
  }

  async paused(): Promise<PausedName[]> {
    return this.use(({ groups }) => pausedNames(groups));
  }

  async throttle(key: string, until: number): Promise<void> {
    this.use(({ transactions }) => transactions.throttle(key, until));
  }

  async putRecord(record: NewRecord, now: number): Promise<StoredRecord> {
    return this.use(({ records }) => records.put(record, now));
  }

  async getRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    return this.use(({ records }) => records.get(collection, ids));
  }

  async listRecords(collection: string, query: RecordQuery): Promise<StoredRecord[]> {
    return this.use(({ records }) => records.list(collection, query));
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    return this.use(({ records }) => records.delete(collection, id));
  }

  async appendFeedEntry(entry: NewFeedEntry, now: number): Promise<AppendedFeedEntry> {
    return this.use(({ feeds }) => feeds.append(entry, now));
  }

  async listFeedEntries(feed: string, query: FeedQuery): Promise<FeedEntry[]> {
    return this.use(({ feeds }) => feeds.list(feed, query));
  }

  async markFeedEntriesRead(feed: string, range: FeedRange, now: number): Promise<number> {
    return this.use(({ feeds }) => feeds.markRead(feed, range, now));
  }

  async countUnreadFeedEntries(feed: string): Promise<number> {
    return this.use(({ feeds }) => feeds.countUnread(feed));
  }

  /** Reads one pragma of this store's connection, e.g. `synchronous`: for tests and diagnostics. */
  readPragma(name: string): unknown {
    if (!/^[a-z_]+$/.test(name))
      throw new TypeError(`readPragma: ${JSON.stringify(name)} is not a pragma name`);
    return this.connected().db.pragma(name, { simple: true });
  }

  /**
   * Runs `work` on the open connection; what the driver throws comes out as the store reports it
   * (see errors.ts).
   */
  private use<T>(work: (connection: Connection) => T): T {
    const connection = this.connected();
    try {
      return work(connection);
    } catch (error) {
      throw sqliteStoreError(error);
    }
  }

  private connected(): Connection {
    if (!this.connection) {
      throw new Error(
        `the SQLite store ${this.path} is not open: call open() first (or it was closed)`,
      );
    }
    return this.connection;
  }
}

/** A page of `list`: the newest tasks first, below the cursor. */
function listPage(
  statements: Statements,
  { state, name, keyPrefix, limit, cursor }: ListFilter & { limit: number },
): TaskPage {
  const below = cursor === undefined ? NO_CURSOR : parseCursor(cursor);
  const parameters = { below, name: name ?? null, limit: limit + 1 };
  const rows =
    keyPrefix !== undefined
      ? statements.listByKey.all({
          ...parameters,
          from: keyPrefix,
          to: prefixEnd(keyPrefix) ?? ABOVE_ALL_TEXT,
          state: state ?? null,
        })
      : state === undefined
        ? statements.list.all(parameters)
        : state === 'queued'
          ? statements.listQueued.all(parameters)
          : state === 'running'
            ? statements.listRunning.all(parameters)
            : statements.listFinished.all({ ...parameters, state });
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const tasks = rows.map((row) => toTask(row));
  return { tasks, nextCursor: more ? tasks[tasks.length - 1]!.id : null };
}

/** Creates the SQLite store; call `open()` before using it. */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
