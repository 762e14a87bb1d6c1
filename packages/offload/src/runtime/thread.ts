import { PermanentError } from '../errors/permanent.js';
import { RetryLaterError } from '../errors/retry-later.js';
import type { ClaimedTask } from '../store/store.js';
import { startThread } from '../threads.js';
import type { Logger } from '../types.js';
import type { Attempt } from './attempt.js';
import { logWithError } from './log-listener.js';
import type { ProgressReports } from './progress.js';

/** What a task thread is given: one attempt of one task. */
export interface ThreadAttempt {
  module: string;
  name: string;
  payload: unknown;
  taskId: string;
  attempt: number;
  maxAttempts: number;
  /** The attempt's traceparent, for `ctx.traceparent` in the thread; spans do not cross. */
  traceparent: string | null;
}

/** What a task thread threw, as it crosses to the runtime's thread. */
export interface ThreadError {
  name: string;
  message: string;
  stack: string | null;
  /** A RetryLaterError's delay; null for any other error. */
  delay: number | null;
  /** Whether a RetryLaterError throttles its group key. */
  throttle: boolean;
}

/** What a task thread posts back. */
export type ThreadMessage =
  | {
      kind: 'log';
      level: 'debug' | 'info' | 'warn' | 'error';
      obj: object;
      msg: string | undefined;
    }
  | { kind: 'progress'; value: unknown }
  | { kind: 'success'; value: unknown }
  | { kind: 'failure'; error: ThreadError };

const ENTRY = new URL('./thread-worker.js', import.meta.url);

/**
 * Runs one attempt in a worker thread of its own that loads `module` (the module exporting the
 * task's definition). Resolves with what `run` returned, rejects with what it threw. When the
 * attempt is aborted (timeout, cancel, shutdown) the thread is terminated at once, whatever it is
 * doing, so the runtime's slot and the process's CPU are free again. What the thread reports with
 * `ctx.progress` (checked there) goes to `reports`.
 */
export function runInThread(
  module: string,
  attempt: Attempt,
  logger: Logger,
  reports: ProgressReports,
  traceparent: string | null,
): Promise<unknown> {
  const { task } = attempt;
  const worker = startThread(ENTRY, {
    workerData: threadAttempt(module, task, traceparent),
    // Task output goes through the logger, not the parent's stdio streams.
    stdout: false,
    stderr: false,
  });
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      attempt.signal.removeEventListener('abort', stop);
      outcome();
      void worker.terminate();
    };
    const stop = () => settle(() => reject(attempt.signal.reason));
    attempt.signal.addEventListener('abort', stop, { once: true });
    worker.on('message', (message: ThreadMessage) => {
      if (message.kind === 'log') {
        const taskLogger = logger.child({
          taskId: task.id,
          task: task.name,
          attempt: task.attempts,
        });
        taskLogger[message.level](message.obj, message.msg);
      } else if (message.kind === 'progress') {
        // Checked in the thread already, and structured clone keeps JSON as it is; still, nothing
        // thrown in this listener may reach the process.
        try {
          reports.report(attempt, message.value);
        } catch (error) {
          logWithError(logger, 'warn', { taskId: task.id }, error, 'a progress report was refused');
        }
      } else if (message.kind === 'success') {
        settle(() => resolve(message.value));
      } else {
        settle(() => reject(rebuild(message.error)));
      }
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) =>
      settle(() =>
        reject(new Error(`the task's thread exited with code ${code} before the task finished`)),
      ),
    );
  });
}

function threadAttempt(
  module: string,
  task: ClaimedTask,
  traceparent: string | null,
): ThreadAttempt {
  return {
    traceparent,
    module,
    name: task.name,
    payload: task.payload,
    taskId: task.id,
    attempt: task.attempts,
    maxAttempts: task.maxAttempts,
  };
}

/** The thread's error as the retry policy reads it: its class, message and stack. */
function rebuild(error: ThreadError): Error {
  let rebuilt: Error;
  if (error.name === 'PermanentError') rebuilt = new PermanentError(error.message);
  else if (error.name === 'RetryLaterError' && error.delay !== null)
    rebuilt = new RetryLaterError(error.delay, error.message, { throttle: error.throttle });
  else {
    rebuilt = new Error(error.message);
    rebuilt.name = error.name;
  }
  rebuilt.stack = error.stack ?? undefined;
  return rebuilt;
}
