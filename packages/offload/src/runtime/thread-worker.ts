/**
 * The entry of a task thread: loads the module that exports the task's definition, runs one
 * attempt and posts the outcome. The runtime terminates the thread at the attempt's timeout, on
 * cancel and on shutdown, so a task that blocks the CPU or ignores its signal still stops.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PermanentError } from '../errors/permanent.js';
import { encodeProgress } from '../json.js';
import { retryLaterDelay, throttles } from '../errors/retry-later.js';
import { describeThrown } from '../store/stored-error.js';
import type { TaskContext, TaskDefinition } from './define-task.js';
import { parseStored } from './payload-schema.js';
import type { ThreadAttempt, ThreadError, ThreadMessage } from './thread.js';

const attempt = workerData as ThreadAttempt;
const post = (message: ThreadMessage) => parentPort!.postMessage(message);

const log =
  (level: 'debug' | 'info' | 'warn' | 'error') =>
  (obj: object, msg?: string): void =>
    post({ kind: 'log', level, obj: plain(obj), msg });
const logger: TaskContext['logger'] = {
  debug: log('debug'),
  info: log('info'),
  warn: log('warn'),
  error: log('error'),
  child: () => logger,
};

try {
  const definition = await loadDefinition();
  const context: TaskContext = {
    taskId: attempt.taskId,
    name: attempt.name,
    attempt: attempt.attempt,
    maxAttempts: attempt.maxAttempts,
    // Never aborted here: the runtime ends the whole thread instead.
    signal: new AbortController().signal,
    logger,
    traceparent: attempt.traceparent,
    progress(value) {
      // Checked here, so that a bad value throws in the task's code, as it does outside a thread.
      encodeProgress(value);
      post({ kind: 'progress', value });
    },
  };
  const { value: payload } = await parseStored(definition, attempt.payload);
  const value: unknown = await definition.run(payload as never, context);
  post({ kind: 'success', value });
} catch (error) {
  post({ kind: 'failure', error: describe(error) });
}

/**
 * The definition, from the module that exports it. A module that cannot be loaded, or does not
 * export the definition, is a mistake in the code that no retry mends: a PermanentError.
 */
async function loadDefinition(): Promise<TaskDefinition<unknown>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(attempt.module)) as Record<string, unknown>;
  } catch (error) {
    throw new PermanentError(
      `the module ${attempt.module} of this thread task could not be loaded: ${describeThrown(error).message}`,
    );
  }
  for (const value of Object.values(module)) {
    const candidate = value as TaskDefinition<unknown> | null;
    if (candidate?.name === attempt.name && typeof candidate.run === 'function') return candidate;
  }
  throw new PermanentError(
    `the module ${attempt.module} exports no task definition named ${JSON.stringify(attempt.name)}; export the definition made by defineTask from the module given as its \`module\``,
  );
}

/** What the task threw, as plain data that crosses to the runtime's thread; never throws. */
function describe(error: unknown): ThreadError {
  return { ...describeThrown(error), delay: retryLaterDelay(error), throttle: throttles(error) };
}

/** Log fields as they survive postMessage: errors and the like become plain objects. */
function plain(obj: object): object {
  try {
    return JSON.parse(
      JSON.stringify(obj, (_key, value: unknown) =>
        value instanceof Error
          ? { type: value.name, message: value.message, stack: value.stack }
          : value,
      ),
    ) as object;
  } catch {
    return {};
  }
}
