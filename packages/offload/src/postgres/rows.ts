import { decodePayload, decodeResult } from '../json.js';
import type { Task, TaskState } from '../types.js';
import { decodeErrors } from '../store/stored-error.js';
import { toGroup } from '../store/group-limits.js';
import type { ClaimedTask } from '../store/store.js';

/**
 * A row of `tasks` as node-postgres returns it: `bigint` columns (ids, times in epoch ms) arrive
 * as strings, `jsonb` parsed.
 */
export interface TaskRow {
  id: string;
  name: string;
  payload: string;
  state: TaskState;
  priority: number;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  key: string | null;
  run_at: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Parsed from jsonb: an array of stored errors, unless written by hand. */
  errors: unknown;
  result: string | null;
  /** Absent from what a claim returns (see CLAIMED_COLUMNS). */
  progress?: string | null;
  lease_owner: string | null;
  lease: number;
  group_key: string | null;
  group_concurrency: number | null;
  group_rate_max: number | null;
  group_rate_period: number | null;
  trace: string | null;
}

/** The columns every task read selects. */
export const TASK_COLUMNS =
  'id, name, payload, state, priority, attempts, max_attempts, timeout_ms, key, run_at, created_at, started_at, finished_at, errors, result, lease_owner, lease, progress, group_key, group_concurrency, group_rate_max, group_rate_period, trace';

/** What a claim returns of each task: all but `progress` (see ClaimedTask). */
export const CLAIMED_COLUMNS = TASK_COLUMNS.replace(', progress', '');

function time(value: string | null): Date | null {
  return value === null ? null : new Date(Number(value));
}

/** Maps a row to a task; `payload` is passed when the caller has decoded it already. */
export function toTask(row: TaskRow, payload: unknown = decodePayload(row.payload).payload): Task {
  return {
    id: row.id,
    name: row.name,
    payload: payload as Task['payload'],
    state: row.state,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timeout: row.timeout_ms,
    key: row.key,
    group: toGroup(row.group_key, row.group_concurrency, row.group_rate_max, row.group_rate_period),
    runAt: new Date(Number(row.run_at)),
    createdAt: new Date(Number(row.created_at)),
    startedAt: time(row.started_at),
    finishedAt: time(row.finished_at),
    errors: decodeErrors(row.errors),
    result: row.result === null ? null : decodeResult(row.result),
    progress: row.progress == null ? null : decodeResult(row.progress),
    trace: row.trace,
  };
}

/** Maps a claimed row to the task its attempt runs. */
export function toClaimedTask(row: TaskRow): ClaimedTask {
  const { payload, error } = decodePayload(row.payload);
  return Object.assign(toTask(row, payload), { lease: row.lease, payloadError: error });
}

/** Claim order: highest priority first, then earliest `runAt`, then oldest. */
export function byClaimOrder(a: TaskRow, b: TaskRow): number {
  return b.priority - a.priority || Number(a.run_at) - Number(b.run_at) || compareIds(a.id, b.id);
}

/** Compares two bigint ids given as canonical decimal strings. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
