import { decodePayload, decodeResult } from '../../json.js';
import type { Task, TaskError, TaskState } from '../../types.js';
import type { ClaimedTask } from '../store.js';

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
}

/** The columns every task read selects, in `TaskRow` order. */
export const TASK_COLUMNS =
  'id, name, payload, state, priority, attempts, max_attempts, timeout_ms, key, run_at, created_at, started_at, finished_at, errors, lease_owner, lease, lease_expires_at, result';

/** A stored error: as `TaskError`, with `at` in epoch milliseconds. */
interface StoredError {
  attempt: number;
  at: number;
  name: string;
  message: string;
  stack: string | null;
}

const NO_ERRORS = '[]';

/** The JSON text of one error, as appended to the `errors` column. */
export function encodeError(error: TaskError): string {
  const stored: StoredError = {
    attempt: error.attempt,
    at: error.at.getTime(),
    name: error.name,
    message: error.message,
    stack: error.stack,
  };
  return JSON.stringify(stored);
}

function decodeErrors(text: string): TaskError[] {
  if (text === NO_ERRORS) return [];
  return (JSON.parse(text) as StoredError[]).map((e) => ({
    attempt: e.attempt,
    at: new Date(e.at),
    name: e.name,
    message: e.message,
    stack: e.stack,
  }));
}

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
    runAt: new Date(row.run_at),
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? null : new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    errors: decodeErrors(row.errors),
    result: row.result === null ? null : decodeResult(row.result),
  };
}

/** Maps a claimed row to the task its attempt runs, without copying the task (the hot path). */
export function toClaimedTask(row: TaskRow): ClaimedTask {
  const { payload, error } = decodePayload(row.payload);
  return Object.assign(toTask(row, payload), { lease: row.lease, payloadError: error });
}
