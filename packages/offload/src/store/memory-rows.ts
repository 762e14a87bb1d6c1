import { decodePayload, decodeResult } from '../json.js';
import type { ListFilter, Task, TaskError, TaskGroup, TaskPage, TaskState } from '../types.js';
import { parseCursor } from './ids.js';
import { MAX_ERRORS_KEPT, type StoreStats } from './store.js';

/** A task as the memory store keeps it (see memory.ts). */
export interface Row {
  id: number;
  name: string;
  payload: string;
  state: TaskState;
  priority: number;
  attempts: number;
  maxAttempts: number;
  timeout: number | null;
  key: string | null;
  group: TaskGroup | null;
  runAt: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  errors: TaskError[];
  /** JSON text, as the durable stores keep it. */
  result: string | null;
  progress: string | null;
  trace: string | null;
  owner: string | null;
  lease: number;
  leaseExpiresAt: number | null;
  /** Bumped each time the row is (re)queued, so stale heap entries can be told apart. */
  version: number;
}

export interface Entry {
  row: Row;
  version: number;
}

export const byRunAt = (a: Entry, b: Entry) =>
  a.row.runAt < b.row.runAt || (a.row.runAt === b.row.runAt && a.row.id < b.row.id);
export const byPriority = (a: Entry, b: Entry) =>
  a.row.priority > b.row.priority || (a.row.priority === b.row.priority && byRunAt(a, b));

/** How many tasks there are per state and name; a group that empties is dropped. */
export class StateCounts {
  private readonly byState = new Map<TaskState, Map<string, number>>();

  add(name: string, state: TaskState, change: 1 | -1): void {
    let names = this.byState.get(state);
    if (!names) this.byState.set(state, (names = new Map()));
    const count = (names.get(name) ?? 0) + change;
    if (count === 0) names.delete(name);
    else names.set(name, count);
  }

  list(): StoreStats['counts'] {
    const counts: StoreStats['counts'] = [];
    for (const [state, names] of this.byState) {
      for (const [name, count] of names) counts.push({ name, state, count });
    }
    return counts;
  }
}

export function isCurrent(entry: Entry): boolean {
  return entry.row.state === 'queued' && entry.version === entry.row.version;
}

export function pushError(row: Row, error: TaskError): void {
  // A copy: the caller's object (and its Date) may change later.
  row.errors.push({ ...error, at: new Date(error.at) });
  if (row.errors.length > MAX_ERRORS_KEPT)
    row.errors.splice(0, row.errors.length - MAX_ERRORS_KEPT);
}

/** A snapshot: callers get copies, as they would from a database, never the live row. */
export function toTask(row: Row, payload: unknown = decodePayload(row.payload).payload): Task {
  return {
    id: String(row.id),
    name: row.name,
    payload: payload as Task['payload'],
    state: row.state,
    priority: row.priority,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    timeout: row.timeout,
    key: row.key,
    group: copyGroup(row.group),
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    startedAt: row.startedAt === null ? null : new Date(row.startedAt),
    finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt),
    errors: row.errors.map((e) => ({ ...e, at: new Date(e.at) })),
    result: row.result === null ? null : decodeResult(row.result),
    progress: row.progress === null ? null : decodeResult(row.progress),
    trace: row.trace,
  };
}

export function copyGroup(group: TaskGroup | null): TaskGroup | null {
  return group === null ? null : { ...group, rate: group.rate && { ...group.rate } };
}

/** The run-at of the oldest queued task in `due` that is due at `now`, or null. */
export function oldestDue(due: Iterable<Entry>, now: number): number | null {
  let oldest: number | null = null;
  for (const entry of due) {
    const { runAt } = entry.row;
    // A clock that stepped back since an earlier claim moved an entry to `due`: not yet due.
    if (isCurrent(entry) && runAt <= now && (oldest === null || runAt < oldest)) oldest = runAt;
  }
  return oldest;
}

/** A page of `list`: the newest tasks first, below the cursor. */
export function listPage(
  rows: ReadonlyMap<number, Row>,
  { state, name, keyPrefix, limit, cursor }: ListFilter & { limit: number },
): TaskPage {
  const below = cursor === undefined ? Infinity : parseCursor(cursor);
  const tasks: Task[] = [];
  const ids = [...rows.keys()];
  let more = false;
  for (let i = ids.length - 1; i >= 0; i--) {
    const row = rows.get(ids[i]!)!;
    if (
      row.id >= below ||
      (state && row.state !== state) ||
      (name && row.name !== name) ||
      (keyPrefix !== undefined && !row.key?.startsWith(keyPrefix))
    )
      continue;
    if (tasks.length === limit) {
      more = true;
      break;
    }
    tasks.push(toTask(row));
  }
  return { tasks, nextCursor: more ? tasks[tasks.length - 1]!.id : null };
}
