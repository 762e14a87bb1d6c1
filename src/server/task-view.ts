import type { Task } from '../index.js';

/** A task as the status API shows it (DESIGN.md): times in ISO 8601, absent values null. */
export interface TaskView {
  id: string;
  name: string;
  state: Task['state'];
  attempts: number;
  maxAttempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /**
   * The most recent failed attempt, or null when none failed. It stays after a later attempt
   * succeeds, so a task that needed a retry shows why. Stacks are not shown over HTTP.
   */
  lastError: { name: string; message: string; attempt: number; at: string } | null;
  /** What the task returned once it succeeded (e.g. which provider delivered), or null. */
  result: Task['result'];
}

export function taskView(task: Task): TaskView {
  const last = task.errors.at(-1);
  return {
    id: task.id,
    name: task.name,
    state: task.state,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    createdAt: task.createdAt.toISOString(),
    startedAt: task.startedAt?.toISOString() ?? null,
    finishedAt: task.finishedAt?.toISOString() ?? null,
    lastError: last
      ? { name: last.name, message: last.message, attempt: last.attempt, at: last.at.toISOString() }
      : null,
    result: task.result,
  };
}
