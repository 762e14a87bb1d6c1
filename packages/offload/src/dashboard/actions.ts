import { isInstance } from '../errors/is-instance.js';
import { OffloadError } from '../errors/offload-error.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Task } from '../types.js';
import { header, type DashboardRequest } from './http.js';
import { taskUpdate } from './live.js';

/** What a POST answered without script comes back with: fixed texts, never the client's. */
export const NOTICES: Record<string, string> = {
  retried: 'The task was queued again.',
  canceled: 'The task was canceled.',
  paused: 'The name was paused: its tasks are not claimed until it is resumed.',
  resumed: 'The name was resumed.',
  'schedule-paused': 'The schedule was paused.',
  'schedule-resumed': 'The schedule was resumed.',
  'retried-all': 'The failed tasks were queued again.',
};

/**
 * Runs the action at `path` (below the mount path) with the form's fields, once the session and
 * CSRF token were checked. Returns the notice to show and what to answer the script, or null
 * when there is no such action. Errors of the runtime (an unknown task, a state that does not
 * allow the change) are thrown for the caller to show.
 */
export async function runAction(
  runtime: Runtime,
  path: string,
  form: URLSearchParams,
  changed: (task: Task) => void,
): Promise<{ notice: string; value: Record<string, unknown> } | null> {
  const task = /^\/tasks\/([A-Za-z0-9_-]{1,100})\/(retry|cancel)$/.exec(path);
  if (task) {
    const after =
      task[2] === 'retry' ? await runtime.retry(task[1]!) : await runtime.cancel(task[1]!);
    changed(after);
    return {
      notice: task[2] === 'retry' ? 'retried' : 'canceled',
      value: { task: taskUpdate(after) },
    };
  }
  const name = form.get('name') ?? '';
  switch (path) {
    case '/names/pause':
      await runtime.pause(name);
      return { notice: 'paused', value: {} };
    case '/names/resume':
      await runtime.resume(name);
      return { notice: 'resumed', value: {} };
    case '/schedules/pause':
      await runtime.schedules.pause(name);
      return { notice: 'schedule-paused', value: {} };
    case '/schedules/resume':
      await runtime.schedules.resume(name);
      return { notice: 'schedule-resumed', value: {} };
    case '/names/retry-failed':
      return {
        notice: 'retried-all',
        value: { retried: await retryFailed(runtime, name, changed) },
      };
  }
  return null;
}

/** Queues every failed task of `name` again, a page at a time; returns how many. */
async function retryFailed(
  runtime: Runtime,
  name: string,
  changed: (task: Task) => void,
): Promise<number> {
  let retried = 0;
  let cursor: string | null = null;
  do {
    const page = await runtime.list({
      state: 'failed',
      name,
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const task of page.tasks) {
      try {
        changed(await runtime.retry(task.id));
        retried += 1;
      } catch (error) {
        // Retried or pruned meanwhile: the others go on.
        if (!isInstance(error, OffloadError)) throw error;
      }
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return retried;
}

/**
 * Whether a POST came from a page of this host: a browser sends `Origin` with every POST, and a
 * form of another site names that site. Requests without it (curl, old browsers) pass: the CSRF
 * token still guards them.
 */
export function sameOrigin(request: DashboardRequest): boolean {
  const origin = header(request.headers, 'origin');
  if (origin === undefined) return true;
  const host = header(request.headers, 'x-forwarded-host') ?? header(request.headers, 'host');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** `back` with the notice to show there. */
export function withNotice(back: string, notice: string): string {
  const url = new URL(back, 'http://dashboard.invalid');
  url.searchParams.set('notice', notice);
  return `${url.pathname}${url.search}`;
}
