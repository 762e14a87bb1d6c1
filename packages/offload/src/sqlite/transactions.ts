import type Database from 'better-sqlite3';
import { parseRowId } from '../store/ids.js';
import { isFinished } from '../types.js';
import {
  insertedTask,
  interruptedError,
  type Change,
  type ClaimRequest,
  type EnqueueResult,
  type Lease,
  type NewTask,
  type ProgressUpdate,
  type Rescue,
  type Settlement,
} from '../store/store.js';
import { encodeError } from '../store/stored-error.js';
import { sqliteStoreError } from './errors.js';
import { BlockedGroups } from './blocked-groups.js';
import { claimGrouped, ThrottledKeys, unpausedNames, type GroupStatements } from './groups.js';
import { toTask, type ClaimedRow, type TaskRow } from './rows.js';
import {
  MAX_INSERT_ROWS,
  type ClaimStatement,
  type EndAttempt,
  type Statements,
} from './statements.js';

/**
 * The store's writes, each one IMMEDIATE transaction, built once per connection (better-sqlite3
 * wraps a function per `db.transaction`; doing that on every call costs a few microseconds).
 */
export interface Transactions {
  enqueue(tasks: readonly NewTask[]): EnqueueResult[];
  /**
   * Claims tasks with a group (see `claimGrouped`, from the key after `after`), then the others in
   * claim order; `statementFor(n)` is `prepareClaim` for n names. Returns the last key taken from.
   */
  claim(
    statementFor: (count: number) => ClaimStatement,
    request: ClaimRequest,
    after: string,
  ): { rows: ClaimedRow[]; after: string };
  settle(settlements: readonly Settlement[]): boolean[];
  renew(leases: readonly Lease[], expiresAt: number): string[];
  progress(updates: readonly ProgressUpdate[]): string[];
  rescue(now: number, deadOwners: readonly string[]): Rescue[];
  cancel(id: number, now: number): Change | null;
  retry(id: number, now: number): Change | null;
  prune(before: number, limit: number): number;
  pause(name: string, now: number): boolean;
  resume(name: string): boolean;
  throttle(key: string, until: number): void;
}

/**
 * What the store does around each write transaction. A write that fails throws, and is passed to
 * `failed`, as the store reports it (see errors.ts).
 */
export interface WriteGuard {
  /** Throws when writing would be wrong (a file of the database is no longer the one opened). */
  before(): void;
  succeeded(): void;
  failed(error: unknown): void;
}

/** Wraps a function in an IMMEDIATE transaction, with `guard` around each call. */
export type Write = <A extends unknown[], R>(body: (...args: A) => R) => (...args: A) => R;

export function writer(db: Database.Database, guard: WriteGuard): Write {
  return <A extends unknown[], R>(body: (...args: A) => R): ((...args: A) => R) => {
    const transaction = db.transaction(body);
    return (...args: A) => {
      guard.before();
      let result: R;
      try {
        result = transaction.immediate(...args);
      } catch (thrown) {
        const error = sqliteStoreError(thrown);
        guard.failed(error);
        throw error;
      }
      guard.succeeded();
      return result;
    };
  };
}

export function createTransactions(
  db: Database.Database,
  statements: Statements,
  groups: GroupStatements,
  guard: WriteGuard,
): Transactions {
  const throttled = new ThrottledKeys();
  const blocked = new BlockedGroups(db);
  const write = writer(db, guard);

  return {
    enqueue: write((tasks: readonly NewTask[]) => {
      let id = statements.nextId.get()!;
      const results: EnqueueResult[] = [];
      if (tasks.some((task) => task.group !== null)) blocked.changed();
      while (results.length < tasks.length) {
        const next = tasks[results.length]!;
        if (next.key === null && next.group === null) {
          id = insertKeyless(statements, id, tasks, results);
          continue;
        }
        const result = enqueueKeyed(statements, id, next);
        if (result.created) id += 1;
        results.push(result);
      }
      return results;
    }),

    // A skip-scan by hand: find the priorities that have a due task (one or two index seeks
    // each), then, highest first, take the due tasks of each until the limit is reached. A single
    // query ordered by (priority DESC, run_at, id) cannot stop at the first task due later, so it
    // would walk every queued task, however far in the future, on every claim and idle poll.
    claim: write(
      (statementFor: (count: number) => ClaimStatement, request: ClaimRequest, after: string) => {
        const { now, owner, leaseExpiresAt, limit } = request;
        const names = unpausedNames(groups, request.names);
        const claimed: ClaimedRow[] = [];
        if (names.length === 0) return { rows: claimed, after };
        if (!blocked.blocked(names, now) && groups.due.get(now) !== undefined) {
          const grouped = claimGrouped(db, groups, throttled, request, names, after, claimed);
          after = grouped.last;
          if (claimed.length === 0) {
            blocked.remember(names, Math.min(grouped.wake, groups.nextDue.get(now) ?? Infinity));
          } else {
            blocked.started(claimed.map((row) => row[0]));
          }
        }
        if (claimed.length >= limit) return { rows: claimed, after };
        const statement = statementFor(names.length);
        const priorities = statements.duePriorities.all(now).sort((a, b) => b - a);
        for (const priority of priorities) {
          const left = limit - claimed.length;
          const rows = statement.all(now, owner, leaseExpiresAt, priority, now, ...names, left);
          for (const row of rows) claimed.push(row);
          if (claimed.length >= limit) break;
        }
        return { rows: claimed, after };
      },
    ),

    settle: write((settlements: readonly Settlement[]) => {
      if (blocked.tracking) blocked.ended(settlements.map((s) => rowId(s.id)));
      return settlements.map((s) => {
        if (s.state === 'succeeded' && !s.error && !s.refund && s.progress === undefined) {
          return statements.succeed.run(s.result ?? null, s.at, rowId(s.id), s.lease).changes === 1;
        }
        const queued = s.state === 'queued';
        const parameters: EndAttempt = {
          id: rowId(s.id),
          lease: s.lease,
          state: s.state,
          refund: s.refund ? 1 : 0,
          runAt: queued ? (s.runAt ?? s.at) : null,
          finishedAt: queued ? null : s.at,
          error: s.error ? encodeError(s.error) : null,
          result: s.state === 'succeeded' ? (s.result ?? null) : null,
          progress: s.progress ?? null,
        };
        return statements.settle.run(parameters).changes === 1;
      });
    }),

    renew: write((leases: readonly Lease[], expiresAt: number) => {
      const lost: string[] = [];
      for (const { id, lease } of leases) {
        if (statements.renew.run(expiresAt, rowId(id), lease).changes === 0) lost.push(id);
      }
      return lost;
    }),

    progress: write((updates: readonly ProgressUpdate[]) => {
      const lost: string[] = [];
      for (const { id, lease, progress } of updates) {
        if (statements.progress.run(progress, rowId(id), lease).changes === 0) lost.push(id);
      }
      return lost;
    }),

    rescue: write((now: number, deadOwners: readonly string[]) => {
      const candidates = new Map<number, TaskRow>();
      for (const row of statements.expired.all(now)) candidates.set(row.id, row);
      for (const owner of deadOwners) {
        for (const row of statements.runningOf.all(owner)) candidates.set(row.id, row);
      }
      const rescued: Rescue[] = [];
      for (const row of candidates.values()) {
        const failed = row.attempts >= row.max_attempts;
        const updated = statements.rescue.get({
          id: row.id,
          lease: row.lease,
          state: failed ? 'failed' : 'queued',
          refund: 0,
          runAt: failed ? null : now,
          finishedAt: failed ? now : null,
          error: encodeError(interruptedError(row.attempts, now, row.lease_owner)),
          result: null,
          progress: null,
        });
        if (updated) rescued.push({ task: toTask(updated), owner: row.lease_owner });
      }
      if (rescued.length > 0) blocked.changed();
      return rescued;
    }),

    cancel: write((id: number, now: number): Change | null => {
      blocked.changed();
      const row = statements.byId.get(id);
      if (!row) return null;
      if (isFinished(row.state)) return { task: toTask(row), changed: false };
      return { task: toTask(statements.cancel.get(now, row.id)!), changed: true };
    }),

    retry: write((id: number, now: number): Change | null => {
      blocked.changed();
      const row = statements.byId.get(id);
      if (!row) return null;
      if (row.state !== 'failed' && row.state !== 'canceled') {
        return { task: toTask(row), changed: false };
      }
      return { task: toTask(statements.retry.get(now, row.id)!), changed: true };
    }),

    // Without AUTOINCREMENT a new row takes max(id) + 1, so pruning the newest rows would let
    // their ids come back: the floor remembers the largest id pruned (see the insert statement).
    prune: write((before: number, limit: number) => {
      const top = statements.maxId.get() ?? null;
      const { changes } = statements.prune.run(before, limit);
      if (changes > 0 && top !== null) statements.raiseIdFloor.run({ top });
      return changes;
    }),

    pause: write((name: string, now: number) => {
      blocked.changed();
      return groups.pause.run(name, now).changes === 1;
    }),
    resume: write((name: string) => {
      blocked.changed();
      return groups.resume.run(name).changes === 1;
    }),
    throttle: write((key: string, until: number) => {
      blocked.changed();
      groups.throttle.run(key, until);
    }),
  };
}

/**
 * Inserts tasks without a key or group from `tasks[results.length]` on, as many rows a statement as the
 * run allows (a power of two up to MAX_INSERT_ROWS): none can be refused, so each is created. Adds
 * their results and returns the next id.
 */
function insertKeyless(
  statements: Statements,
  firstId: number,
  tasks: readonly NewTask[],
  results: EnqueueResult[],
): number {
  const start = results.length;
  let end = start;
  while (
    end < tasks.length &&
    end - start < MAX_INSERT_ROWS &&
    tasks[end]!.key === null &&
    tasks[end]!.group === null
  )
    end += 1;
  const k = Math.floor(Math.log2(end - start));
  const parameters: unknown[] = [];
  let id = firstId;
  for (let i = start; i < start + 2 ** k; i++) {
    const task = tasks[i]!;
    parameters.push(id, task.name, task.payload, task.priority, task.maxAttempts);
    parameters.push(task.timeout, task.runAt, task.createdAt, task.trace);
    results.push({ task: insertedTask(String(id), task), created: true });
    id += 1;
  }
  // Spread rather than one array: better-sqlite3 then takes each value from the call's arguments
  // instead of looking it up in the array (about 3,000 instructions less a row).
  statements.insertRows[k]!.run(...parameters);
  return id;
}

/** Inserts a task with a key or a group, one statement each. */
export function enqueueKeyed(statements: Statements, id: number, input: NewTask): EnqueueResult {
  const { group } = input;
  const { changes } = statements.insert.run(
    id,
    input.name,
    input.payload,
    input.priority,
    input.maxAttempts,
    input.timeout,
    input.key,
    input.runAt,
    input.createdAt,
    group?.key ?? null,
    group?.concurrency ?? null,
    group?.rate?.max ?? null,
    group?.rate?.period ?? null,
    input.trace,
  );
  if (changes === 0) return { task: toTask(statements.byKey.get(input.key!)!), created: false };
  return { task: insertedTask(String(id), input), created: true };
}

/** A task id as a row id; an id that is not one matches no row. */
export function rowId(id: string): number {
  return parseRowId(id) ?? -1;
}
