import type { Logger } from '../types.js';
import type { Events } from './events.js';

/** Logs what an operator must see: every failure once, with the task's name and id. */
export function attachLogging(events: Events, logger: Logger): void {
  events.on('task:error', ({ task, error, retryAt }) => {
    const fields = {
      taskId: task.id,
      task: task.name,
      attempt: task.attempts,
      maxAttempts: task.maxAttempts,
      err: error,
    };
    if (retryAt) logger.warn({ ...fields, retryAt }, 'task attempt failed; it will be retried');
    else
      logger.error(
        fields,
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
  events.on('runtime:error', ({ error, during }) =>
    logger.error({ err: error, during }, `error while ${during}`),
  );
}
