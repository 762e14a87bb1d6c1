import { describeThrown } from '../store/stored-error.js';
import type { Logger } from '../types.js';
import type { Events } from './events.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * Logs `fields` with `error` as `err`. A logger reads the error as it writes it (pino reads its
 * message, stack, causes and keys, and marks it, which a frozen error refuses); when that throws,
 * the line is written with the error as the task records it, so what failed is still logged.
 */
export function logWithError(
  logger: Logger,
  level: Level,
  fields: object,
  error: unknown,
  msg: string,
): void {
  try {
    logger[level]({ ...fields, err: error }, msg);
  } catch {
    logger[level]({ ...fields, err: describeThrown(error) }, msg);
  }
}

/** Logs what an operator must see: every failure once, with the task's name and id. */
export function attachLogging(events: Events, logger: Logger): void {
  events.on('task:error', ({ task, error, retryAt }) => {
    const fields = {
      taskId: task.id,
      task: task.name,
      attempt: task.attempts,
      maxAttempts: task.maxAttempts,
    };
    if (retryAt)
      logWithError(
        logger,
        'warn',
        { ...fields, retryAt },
        error,
        'task attempt failed; it will be retried',
      );
    else
      logWithError(
        logger,
        'error',
        fields,
        error,
        'task failed for good; retry it with POST /api/tasks/:id/retry or runtime.retry(id)',
      );
  });
  events.on('task:rescue', ({ task, owner }) =>
    logger.warn(
      { taskId: task.id, task: task.name, attempt: task.attempts, owner, state: task.state },
      task.state === 'queued'
        ? 'rescued a task whose process stopped while running it; it will run again'
        : 'a task was interrupted on its last attempt and failed for good',
    ),
  );
  events.on('task:release', ({ task }) =>
    logger.info(
      { taskId: task.id, task: task.name },
      'handed a running task back to the queue on shutdown',
    ),
  );
  events.on('task:unknown', ({ name, count }) =>
    logger.warn(
      { task: name, count },
      'queued tasks have a name that no loaded task definition knows; they wait until a process that defines it runs',
    ),
  );
  events.on('schedule:missed', ({ schedule, since, until }) =>
    logger.warn(
      { schedule, since, until },
      'a schedule missed due times while no process fired it; its catch-up policy did not run them',
    ),
  );
  events.on('runtime:error', ({ error, during }) =>
    logWithError(logger, 'error', { during }, error, `error while ${during}`),
  );
}
