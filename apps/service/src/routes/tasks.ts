import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { TASK_STATES, type ListFilter, type TaskState } from 'offload';
import { isTaskName } from 'offload';
import { ApiError } from '../errors.js';
import { taskView, type TaskView } from 'offload';

/** Ids and cursors the stores hand out: row numbers today, maybe UUIDs later. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
const QUERY_KEYS = ['state', 'name', 'limit', 'cursor'];

export interface TaskListAnswer {
  tasks: TaskView[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** The status API: read tasks, retry failed ones, cancel queued or running ones. */
export const taskRoutes: FastifyPluginCallback = (app, _options, done) => {
  const runtime = app.offload;

  app.get('/tasks', async (request): Promise<TaskListAnswer> => {
    const page = await runtime.list(listFilter(request.query));
    return { tasks: page.tasks.map(taskView), nextCursor: page.nextCursor };
  });

  app.get('/tasks/:id', async (request): Promise<TaskView> => {
    const id = taskId(request);
    const task = await runtime.get(id);
    if (!task)
      throw new ApiError(
        'TASK_NOT_FOUND',
        `no task has id ${JSON.stringify(id)}; it may have been pruned after the retention period`,
      );
    return taskView(task);
  });

  app.post('/tasks/:id/retry', async (request): Promise<TaskView> =>
    taskView(await runtime.retry(taskId(request))),
  );
  app.post('/tasks/:id/cancel', async (request): Promise<TaskView> =>
    taskView(await runtime.cancel(taskId(request))),
  );
  done();
};

function taskId(request: FastifyRequest): string {
  const { id } = request.params as { id: string };
  if (!ID_PATTERN.test(id)) {
    throw new ApiError(
      'INVALID_TASK_ID',
      `${JSON.stringify(id)} is not a task id; use the "id" returned when the task was scheduled`,
    );
  }
  return id;
}

function listFilter(query: unknown): ListFilter {
  const fields = (query ?? {}) as Record<string, unknown>;
  const filter: ListFilter = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!QUERY_KEYS.includes(key)) {
      throw new ApiError(
        'INVALID_QUERY',
        `unknown query parameter ${JSON.stringify(key)}; use ${QUERY_KEYS.join(', ')}`,
      );
    }
    if (typeof value !== 'string') throw new ApiError('INVALID_QUERY', `give ${key} once`);
    if (key === 'state') {
      if (!(TASK_STATES as readonly string[]).includes(value)) {
        throw new ApiError(
          'INVALID_QUERY',
          `state must be one of ${TASK_STATES.join(', ')}, got ${JSON.stringify(value)}`,
        );
      }
      filter.state = value as TaskState;
    } else if (key === 'name') {
      if (!isTaskName(value)) {
        throw new ApiError(
          'INVALID_QUERY',
          'name must be a task name: 1 to 200 characters, no leading or trailing spaces, no control characters',
        );
      }
      filter.name = value;
    } else if (key === 'limit') {
      const limit = Number(value);
      if (!/^\d+$/.test(value) || limit < 1 || limit > 1000) {
        throw new ApiError(
          'INVALID_QUERY',
          `limit must be a whole number from 1 to 1000, got ${JSON.stringify(value)}`,
        );
      }
      filter.limit = limit;
    } else {
      if (!ID_PATTERN.test(value))
        throw new ApiError('INVALID_CURSOR', 'cursor must be the nextCursor of the previous page');
      filter.cursor = value;
    }
  }
  return filter;
}
