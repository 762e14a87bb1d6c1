import type { Task } from './index.js';

/** A task as the status API shows it (DESIGN.md): times in ISO 8601, absent values null. */
export interface TaskView {
  id: string;
  name: string;
  state: Task['state'];
  attempts: number;
  maxAttempts: number;
  /** Null only for a row written by hand whose time cannot be read. */
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /**
   * When the task is due: for a queued task, when it runs next (later than now when it was
   * scheduled or deferred, or waits for a retry); for others, when it last was.
   */
  runAt: string | null;
  /**
   * The most recent failed attempt, or null when none failed. It stays after a later attempt
   * succeeds, so a task that needed a retry shows why. Stacks are not shown over HTTP.
   */
  lastError: { name: string; message: string; attempt: number; at: string | null } | null;
  /** What the task returned once it succeeded (e.g. which provider delivered), or null. */
  result: Task['result'];
  /** How far the task got, as its run last reported (`ctx.progress`), or null. */
  progress: Task['progress'];
}

export function taskView(task: Task): TaskView {
  const last = task.errors.at(-1);
  return {
    id: task.id,
    name: task.name,
    state: task.state,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    createdAt: iso(task.createdAt),
    startedAt: iso(task.startedAt),
    finishedAt: iso(task.finishedAt),
    runAt: iso(task.runAt),
    lastError: last
      ? { name: last.name, message: last.message, attempt: last.attempt, at: iso(last.at) }
      : null,
    result: task.result,
    progress: task.progress,
  };
}

/**
 * A time in ISO 8601, or null when absent or unreadable: a row written by hand may hold text
 * where a time belongs, which reads as an invalid date (whose `toISOString` throws).
 */
export function iso(date: Date | null): string | null {
  return date === null || Number.isNaN(date.getTime()) ? null : date.toISOString();
}
