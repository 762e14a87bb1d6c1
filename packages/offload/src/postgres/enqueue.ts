import { OffloadError } from '../errors/offload-error.js';
import { insertedTask, type EnqueueResult, type NewTask } from '../store/store.js';
import { compareIds, toTask, type TaskRow } from './rows.js';

/** Runs one of the enqueue statements with `values`, where the enqueue happens. */
export type EnqueueStatement = <R extends object>(
  name: 'enqueue' | 'byKeys',
  values: unknown[],
) => Promise<{ rows: R[] }>;

/**
 * Inserts `tasks` with one statement; those whose key is stored already are not inserted, and the
 * stored tasks are read back instead, with a second statement.
 */
export async function enqueueTasks(
  tasks: readonly NewTask[],
  run: EnqueueStatement,
): Promise<EnqueueResult[]> {
  const column = <K extends keyof NewTask>(key: K) => tasks.map((task) => task[key]);
  const values = [
    column('name'),
    column('payload'),
    column('priority'),
    column('maxAttempts'),
    column('timeout'),
    column('key'),
    column('runAt'),
    column('createdAt'),
    tasks.map((task) => task.group?.key ?? null),
    tasks.map((task) => task.group?.concurrency ?? null),
    tasks.map((task) => task.group?.rate?.max ?? null),
    tasks.map((task) => task.group?.rate?.period ?? null),
    column('trace'),
  ];
  const { rows } = await run<{ id: string; key: string | null }>('enqueue', values);
  // Ids grow in request order; rows skipped for a stored key are the only gaps.
  rows.sort((a, b) => compareIds(a.id, b.id));
  const results: (EnqueueResult | null)[] = [];
  let next = 0;
  for (const task of tasks) {
    const row = rows[next];
    if (row !== undefined && row.key === task.key) {
      results.push({ task: insertedTask(row.id, task), created: true });
      next += 1;
    } else {
      results.push(null); // its key is stored already
    }
  }
  const missing = tasks.flatMap((task, i) => (results[i] === null ? [task.key!] : []));
  if (missing.length > 0) {
    const stored = await run<TaskRow>('byKeys', [missing]);
    const byKey = new Map(stored.rows.map((row) => [row.key, row]));
    tasks.forEach((task, i) => {
      if (results[i] !== null) return;
      const row = byKey.get(task.key);
      if (!row) {
        // Deleted between the two statements (canceled and pruned): rare, and the caller can retry.
        throw new OffloadError(
          'STORE_CONFLICT',
          `the task with key ${JSON.stringify(task.key)} changed while it was enqueued; try again`,
        );
      }
      results[i] = { task: toTask(row), created: false };
    });
  }
  return results as EnqueueResult[];
}
