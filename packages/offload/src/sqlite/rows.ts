import { decodePayload, decodeResult } from '../json.js';
import type { Task, TaskState } from '../types.js';
import { toGroup } from '../store/group-limits.js';
import { parseErrors } from '../store/stored-error.js';
import type { ClaimedTask } from '../store/store.js';

/** A row of `offload_tasks` as better-sqlite3 returns it. */
export interface TaskRow {
  id: number;
  name: string;
  payload: string;
  state: TaskState;
  priority: number;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  key: string | null;
  run_at: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  errors: string;
  lease_owner: string | null;
  lease: number;
  lease_expires_at: number | null;
  result: string | null;
  progress: string | null;
  group_key: string | null;
  group_concurrency: number | null;
  group_rate_max: number | null;
  group_rate_period: number | null;
  trace: string | null;
}

/** The columns every task read selects, in `TaskRow` order. */
export const TASK_COLUMNS =
  'id, name, payload, state, priority, attempts, max_attempts, timeout_ms, key, run_at, created_at, started_at, finished_at, errors, lease_owner, lease, lease_expires_at, result, progress, group_key, group_concurrency, group_rate_max, group_rate_period, trace';

/** Maps a row to a task; `payload` is passed when the caller has decoded it already. */
export function toTask(row: TaskRow, payload: unknown = decodePayload(row.payload).payload): Task {
  return {
    id: String(row.id),
    name: row.name,
    payload: payload as Task['payload'],
    state: row.state,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timeout: row.timeout_ms,
    key: row.key,
    group: toGroup(row.group_key, row.group_concurrency, row.group_rate_max, row.group_rate_period),
    runAt: new Date(row.run_at),
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? null : new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    errors: parseErrors(row.errors),
    result: row.result === null ? null : decodeResult(row.result),
    progress: row.progress === null ? null : decodeResult(row.progress),
    trace: row.trace,
  };
}

/**
 * What a claim returns of each task, as an array rather than an object (better-sqlite3's `raw`):
 * claiming 50 at a time from a file, 6.0–6.8 µs a task with every column as objects, 4.7–4.8 µs
 * with those it needs as arrays (most of it from the arrays). Each value costs about as much to
 * hand to JavaScript as a few index reads, so the claim leaves out what a queued task cannot have
 * (`finished_at`, `result`), and `progress` (see ClaimedTask), and returns a group as one JSON
 * array, null for the tasks without one.
 */
export const CLAIMED_COLUMNS = `id, name, payload, priority, attempts, max_attempts, timeout_ms, key,
  run_at, created_at, errors, lease, trace, CASE WHEN group_key IS NULL THEN NULL
  ELSE json_array(group_key, group_concurrency, group_rate_max, group_rate_period) END`;

/** A row of `CLAIMED_COLUMNS`. */
export type ClaimedRow = [
  id: number,
  name: string,
  payload: string,
  priority: number,
  attempts: number,
  maxAttempts: number,
  timeoutMs: number | null,
  key: string | null,
  runAt: number,
  createdAt: number,
  errors: string,
  lease: number,
  trace: string | null,
  /** JSON: `[key, concurrency, rateMax, ratePeriod]`. */
  group: string | null,
];

/** Maps a row just claimed, at `startedAt`, to the task its attempt runs (the hot path). */
export function toClaimedTask(row: ClaimedRow, startedAt: number): ClaimedTask {
  const [
    id,
    name,
    text,
    priority,
    attempts,
    maxAttempts,
    timeout,
    key,
    runAt,
    createdAt,
    errors,
    lease,
    trace,
    group,
  ] = row;
  const { payload, error } = decodePayload(text);
  return {
    id: String(id),
    name,
    payload: payload as ClaimedTask['payload'],
    state: 'running',
    priority,
    attempts,
    maxAttempts,
    timeout,
    key,
    group: group === null ? null : toGroup(...(JSON.parse(group) as GroupColumns)),
    runAt: new Date(runAt),
    createdAt: new Date(createdAt),
    startedAt: new Date(startedAt),
    finishedAt: null,
    errors: parseErrors(errors),
    result: null,
    progress: null,
    trace,
    lease,
    payloadError: error,
  };
}

type GroupColumns = [
  key: string,
  concurrency: number | null,
  rateMax: number | null,
  ratePeriod: number | null,
];

/** Where `byClaimOrder` reads a `ClaimedRow`. */
const ID = 0;
const PRIORITY = 3;
const RUN_AT = 8;

/** Claim order: highest priority first, then earliest due, then first stored. */
export function byClaimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b[PRIORITY] - a[PRIORITY] || a[RUN_AT] - b[RUN_AT] || a[ID] - b[ID];
}
