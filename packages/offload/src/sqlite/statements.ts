import type Database from 'better-sqlite3';
import { MAX_ERRORS_KEPT } from '../store/store.js';
import { CLAIMED_COLUMNS, TASK_COLUMNS, type ClaimedRow, type TaskRow } from './rows.js';

/** The finished states, written as the WHERE of offload_tasks_done is (schema 3), so that the
 * planner can prove that index holds every row a query asks for. */
const FINISHED = `(state = 'succeeded' OR state = 'failed' OR state = 'canceled')`;

/** Queued tasks without a group: the WHERE of offload_tasks_claim (schema 7). */
const UNGROUPED = `state = 'queued' AND group_key IS NULL`;
/** Queued tasks with a group: the WHERE of offload_tasks_grouped (schema 7). */
export const GROUPED = `state = 'queued' AND group_key IS NOT NULL`;

/** A count of the tasks of one name in one state. */
export interface TaskCount {
  name: string;
  state: TaskRow['state'];
  count: number;
}

/** The tasks by state and name, each state counted from its index alone. */
export const COUNTS = `SELECT name, 'queued' AS state, sum(count) AS count FROM (
    SELECT name, count(*) AS count
      FROM offload_tasks INDEXED BY offload_tasks_claim WHERE ${UNGROUPED} GROUP BY name
    UNION ALL
    SELECT name, count(*)
      FROM offload_tasks INDEXED BY offload_tasks_grouped WHERE ${GROUPED} GROUP BY name)
  GROUP BY name
  UNION ALL
  SELECT name, 'running', count(*)
    FROM offload_tasks INDEXED BY offload_tasks_running WHERE state = 'running' GROUP BY name
  UNION ALL
  SELECT name, state, count(*)
    FROM offload_tasks INDEXED BY offload_tasks_done WHERE ${FINISHED} GROUP BY state, name`;

/**
 * `errors` with `@error` (JSON text or null) appended, dropping the oldest beyond
 * MAX_ERRORS_KEPT.
 */
const APPEND_ERROR = `CASE WHEN @error IS NULL THEN errors ELSE json_insert(
    CASE WHEN json_array_length(errors) >= ${MAX_ERRORS_KEPT} THEN json_remove(errors, '$[0]') ELSE errors END,
    '$[#]', json(@error)) END`;

/**
 * Ends an attempt, fenced by its lease: `@state` with `@runAt` (for `queued`) or `@finishedAt`,
 * `@refund` (0 or 1) given back, `@error` appended.
 */
const END_ATTEMPT = `UPDATE offload_tasks SET
    state = @state,
    attempts = attempts - @refund,
    run_at = coalesce(@runAt, run_at),
    finished_at = @finishedAt,
    result = @result,
    progress = coalesce(@progress, progress),
    lease_owner = NULL,
    lease_expires_at = NULL,
    errors = ${APPEND_ERROR}
  WHERE id = @id AND state = 'running' AND lease = @lease`;

/** Parameters of `settle` and `rescue`. */
export interface EndAttempt {
  id: number;
  lease: number;
  state: 'queued' | 'succeeded' | 'failed';
  refund: 0 | 1;
  runAt: number | null;
  finishedAt: number | null;
  error: string | null;
  result: string | null;
  /** Null keeps what is stored. */
  progress: string | null;
}

type Statement<P extends unknown[] | object, R = unknown> = Database.Statement<P, R>;

/** Parameters of the list statements: tasks with an id below `below`, of `name` unless null. */
export interface ListParameters {
  below: number;
  name: string | null;
  limit: number;
}

/** Parameters of `listByKey`; `@state` null means any. */
export interface KeyRangeParameters extends ListParameters {
  from: string;
  /** A Buffer when no text is above the prefix: SQLite sorts every BLOB after every TEXT. */
  to: string | Buffer;
  state: string | null;
}

/**
 * Every statement the store runs, prepared once per connection. Queries name their index
 * (`INDEXED BY`): plans stay fixed whatever statistics ANALYZE or `PRAGMA optimize` gather, and a
 * missing index fails loudly instead of turning into a scan.
 */
export interface Statements {
  /** The id the next task takes: above every stored id and every pruned one. */
  nextId: Statement<[], number>;
  /**
   * One task, with a key or a group: stores nothing when a task with that key exists. Parameters:
   * id, name, payload, priority, max_attempts, timeout_ms, key, run_at, created_at, group_key,
   * group_concurrency, group_rate_max, group_rate_period.
   */
  insert: Statement<unknown[]>;
  /**
   * Tasks without a key, none of which can be refused: `insertRows[k]` inserts 2^k rows, up to
   * `MAX_INSERT_ROWS`, each with the parameters id, name, payload, priority, max_attempts,
   * timeout_ms, run_at, created_at.
   */
  insertRows: Statement<unknown[]>[];
  byKey: Statement<[string], TaskRow>;
  byId: Statement<[number], TaskRow>;
  /**
   * The priorities that have a queued task without a group due at the given time, in no
   * particular order.
   */
  duePriorities: Statement<[number], number>;
  /** The earliest `run_at` of the queued tasks due at the given time (given twice), or null. */
  oldestDue: Statement<[number, number], number | null>;
  settle: Statement<[EndAttempt]>;
  /** The common case of settle, with fewer columns to write: success. Parameters: result, at, id, lease. */
  succeed: Statement<[string | null, number, number, number]>;
  rescue: Statement<[EndAttempt], TaskRow>;
  renew: Statement<[number, number, number]>;
  /** Parameters: progress, id, lease. */
  progress: Statement<[string, number, number]>;
  expired: Statement<[number], TaskRow>;
  runningOwners: Statement<[], string>;
  runningOf: Statement<[string], TaskRow>;
  /** Newest first, any state: walks the table backwards from the cursor. */
  list: Statement<[ListParameters], TaskRow>;
  /** Newest first in one finished state (`@state`): walks offload_tasks_done backwards. */
  listFinished: Statement<[ListParameters & { state: string }], TaskRow>;
  /** Newest first among queued tasks: sorts the queued set (an admin query). */
  listQueued: Statement<[ListParameters], TaskRow>;
  /** Newest first among running tasks: sorts the running set (an admin query). */
  listRunning: Statement<[ListParameters], TaskRow>;
  /** Newest first among the tasks with a key from `@from` up to `@to`: reads that key range. */
  listByKey: Statement<[KeyRangeParameters], TaskRow>;
  cancel: Statement<[number, number], TaskRow>;
  retry: Statement<[number, number], TaskRow>;
  /** The largest id stored, or null: read by prune before it deletes. */
  maxId: Statement<[], number | null>;
  prune: Statement<[number, number]>;
  /** After a prune: raises the id floor to the given id when that row is gone. */
  raiseIdFloor: Statement<[{ top: number }]>;
  /**
   * Tasks per state and name, from the index of each state (schema 4), never the rows. A row in a
   * state this code does not know (written by hand, see schema 3) is in none of them.
   */
  counts: Statement<[], TaskCount>;
  /** At least the number of stored tasks: the span of their ids (null when none is stored). */
  idSpan: Statement<[], number | null>;
}

/**
 * Most rows one statement of `insertRows` inserts (a power of two). One statement for many rows
 * costs about a quarter less a row than a statement a row (34 rows a transaction, as at full
 * HTTP load: 3.7 → 2.6 µs a row).
 */
export const MAX_INSERT_ROWS = 64;

/**
 * The claim statement for a number of task names: takes the first due queued tasks of one
 * priority. Parameters: now, owner, lease expiry, priority, now, ...names, limit.
 */
export type ClaimStatement = Statement<unknown[], ClaimedRow>;

/**
 * The distinct priorities of queued tasks, as a table `priorities`: a skip-scan of the claim
 * index, one seek per priority (highest first), however many tasks each priority holds.
 */
const QUEUED_PRIORITIES = `WITH RECURSIVE priorities (priority) AS (
    SELECT max(priority) FROM offload_tasks INDEXED BY offload_tasks_claim
    WHERE ${UNGROUPED}
    UNION ALL
    SELECT (SELECT max(priority) FROM offload_tasks INDEXED BY offload_tasks_claim
            WHERE ${UNGROUPED} AND priority < priorities.priority)
    FROM priorities WHERE priority IS NOT NULL)`;

/** The earliest `run_at` of the tasks of `priorities.priority` due at `?`: one seek. */
const FIRST_DUE = `(SELECT min(run_at) FROM offload_tasks INDEXED BY offload_tasks_claim
    WHERE ${UNGROUPED} AND priority = priorities.priority AND run_at <= ?)`;

/**
 * A LIMIT taken from a parameter. SQLite's planner reads a bare `LIMIT ?` and marks the statement
 * to be compiled again each time that parameter is bound, which here is every call: a claim of one
 * task took about 110 µs, most of it compiling. Inside CAST the planner leaves the value alone.
 */
const limit = (parameter: string) => `LIMIT CAST(${parameter} AS INTEGER)`;

/** Tasks of `@name`, or of any name when it is null. */
const OF_NAME = `(@name IS NULL OR name = @name)`;

/** Prepares every statement once per connection. */
export function prepareStatements(db: Database.Database): Statements {
  const one = <P extends unknown[]>(sql: string) => db.prepare<P, TaskRow>(sql);
  const list = <P extends object>(sql: string) => db.prepare<[P], TaskRow>(sql);
  const value = <P extends unknown[]>(sql: string) => db.prepare<P, number | null>(sql).pluck();
  return {
    // The id is one above both the largest stored and the largest pruned id (offload_id_floor),
    // read once per transaction: AUTOINCREMENT would write its sqlite_sequence page on every commit.
    nextId: value<[]>(
      `SELECT max(coalesce((SELECT max(id) FROM offload_tasks), 0),
                  (SELECT id FROM offload_id_floor WHERE one = 1)) + 1`,
    ) as Statement<[], number>,
    insert: db.prepare<unknown[]>(
      `INSERT INTO offload_tasks (id, name, payload, state, priority, max_attempts, timeout_ms, key, run_at, created_at,
                                 group_key, group_concurrency, group_rate_max, group_rate_period, trace)
       VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING`,
    ),
    insertRows: Array.from({ length: Math.log2(MAX_INSERT_ROWS) + 1 }, (_, k) =>
      db.prepare<unknown[]>(
        `INSERT INTO offload_tasks (id, name, payload, state, priority, max_attempts, timeout_ms, run_at, created_at, trace)
         VALUES ${Array.from({ length: 2 ** k }, () => "(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)").join(', ')}`,
      ),
    ),
    byKey: one<[string]>(`SELECT ${TASK_COLUMNS} FROM offload_tasks WHERE key = ?`),
    byId: one<[number]>(`SELECT ${TASK_COLUMNS} FROM offload_tasks WHERE id = ?`),

    duePriorities: db
      .prepare<[number], number>(
        `${QUEUED_PRIORITIES} SELECT priority FROM priorities WHERE ${FIRST_DUE} IS NOT NULL`,
      )
      .pluck(),
    oldestDue: value<[number, number]>(
      `${QUEUED_PRIORITIES} SELECT min(at) FROM (
         SELECT ${FIRST_DUE} AS at FROM priorities
         UNION ALL
         SELECT min(run_at) FROM offload_tasks INDEXED BY offload_tasks_grouped_due
         WHERE ${GROUPED} AND run_at <= ?)`,
    ),

    settle: db.prepare<[EndAttempt]>(END_ATTEMPT),
    succeed: db.prepare<[string | null, number, number, number]>(
      `UPDATE offload_tasks
       SET state = 'succeeded', result = ?, finished_at = ?, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = ? AND state = 'running' AND lease = ?`,
    ),
    rescue: db.prepare<[EndAttempt], TaskRow>(`${END_ATTEMPT} RETURNING ${TASK_COLUMNS}`),
    renew: db.prepare<[number, number, number]>(
      `UPDATE offload_tasks SET lease_expires_at = ? WHERE id = ? AND state = 'running' AND lease = ?`,
    ),
    progress: db.prepare<[string, number, number]>(
      `UPDATE offload_tasks SET progress = ? WHERE id = ? AND state = 'running' AND lease = ?`,
    ),

    expired: one<[number]>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks INDEXED BY offload_tasks_running
       WHERE state = 'running' AND lease_expires_at < ?`,
    ),
    runningOwners: db
      .prepare<[], string>(
        `SELECT DISTINCT lease_owner FROM offload_tasks INDEXED BY offload_tasks_running
         WHERE state = 'running' AND lease_owner IS NOT NULL`,
      )
      .pluck(),
    runningOf: one<[string]>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks INDEXED BY offload_tasks_running
       WHERE state = 'running' AND lease_owner = ?`,
    ),

    // NOT INDEXED still walks the primary key; it keeps the planner off every other index.
    list: list<ListParameters>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks NOT INDEXED
       WHERE id < @below AND ${OF_NAME} ORDER BY id DESC ${limit('@limit')}`,
    ),
    listFinished: list<ListParameters & { state: string }>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks INDEXED BY offload_tasks_done
       WHERE ${FINISHED} AND state = @state AND id < @below AND ${OF_NAME}
       ORDER BY id DESC ${limit('@limit')}`,
    ),
    listQueued: list<ListParameters>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks WHERE id IN (
         SELECT id FROM offload_tasks INDEXED BY offload_tasks_claim
         WHERE ${UNGROUPED} AND id < @below AND ${OF_NAME}
         UNION ALL
         SELECT id FROM offload_tasks INDEXED BY offload_tasks_grouped
         WHERE ${GROUPED} AND id < @below AND ${OF_NAME})
       ORDER BY id DESC ${limit('@limit')}`,
    ),
    listRunning: list<ListParameters>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks INDEXED BY offload_tasks_running
       WHERE state = 'running' AND id < @below AND ${OF_NAME} ORDER BY id DESC ${limit('@limit')}`,
    ),

    listByKey: list<KeyRangeParameters>(
      `SELECT ${TASK_COLUMNS} FROM offload_tasks INDEXED BY offload_tasks_key
       WHERE key IS NOT NULL AND key >= @from AND key < @to
         AND id < @below AND ${OF_NAME} AND (@state IS NULL OR state = @state)
       ORDER BY id DESC ${limit('@limit')}`,
    ),

    cancel: one<[number, number]>(
      `UPDATE offload_tasks
       SET state = 'canceled', finished_at = ?, lease_owner = NULL, lease_expires_at = NULL
       WHERE id = ? RETURNING ${TASK_COLUMNS}`,
    ),
    retry: one<[number, number]>(
      `UPDATE offload_tasks
       SET state = 'queued', run_at = ?, finished_at = NULL,
           max_attempts = max(max_attempts, attempts + 1)
       WHERE id = ? RETURNING ${TASK_COLUMNS}`,
    ),
    maxId: value<[]>(`SELECT max(id) FROM offload_tasks`),
    prune: db.prepare<[number, number]>(
      `DELETE FROM offload_tasks WHERE id IN (
         SELECT id FROM offload_tasks INDEXED BY offload_tasks_done
         WHERE ${FINISHED} AND finished_at < ? ${limit('?')})`,
    ),
    raiseIdFloor: db.prepare<[{ top: number }]>(
      `UPDATE offload_id_floor SET id = @top
       WHERE id < @top AND NOT EXISTS (SELECT 1 FROM offload_tasks WHERE id = @top)`,
    ),

    counts: db.prepare<[], TaskCount>(COUNTS),
    idSpan: value<[]>(`SELECT max(id) - min(id) + 1 FROM offload_tasks`),
  };
}

/**
 * The claim statement for `count` task names: one UPDATE that takes the first `limit` due queued
 * tasks without a group of one priority, in claim order, and returns them. With the priority fixed, the claim
 * index is read from (priority, first run_at) to the last due task only, and never walks the
 * tasks due later, however many wait. Parameters: now, owner, lease expiry, priority, now,
 * ...names, limit.
 */
export function prepareClaim(db: Database.Database, count: number): ClaimStatement {
  const names = Array.from({ length: count }, () => '?').join(', ');
  return db
    .prepare<unknown[], ClaimedRow>(
      `UPDATE offload_tasks
       SET state = 'running', attempts = attempts + 1, started_at = ?, lease_owner = ?,
           lease = lease + 1, lease_expires_at = ?
       WHERE id IN (
         SELECT id FROM offload_tasks INDEXED BY offload_tasks_claim
         WHERE ${UNGROUPED} AND priority = ? AND run_at <= ? AND name IN (${names})
         ORDER BY run_at, id
         ${limit('?')})
       RETURNING ${CLAIMED_COLUMNS}`,
    )
    .raw(true);
}
