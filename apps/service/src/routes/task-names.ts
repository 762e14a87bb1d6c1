import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { isTaskName } from 'offload';
import { ApiError } from '../errors.js';

/** What pause and resume answer: the name, whether it is paused now, and whether that changed. */
export interface TaskNameAnswer {
  name: string;
  paused: boolean;
  changed: boolean;
}

export interface PausedAnswer {
  paused: { name: string; pausedAt: string }[];
}

/**
 * Pause and resume by task name: every process on the store stops claiming tasks of a paused
 * name (running ones finish) until it is resumed; the pause is stored, so it outlasts restarts.
 */
export const taskNameRoutes: FastifyPluginCallback = (app, _options, done) => {
  const runtime = app.offload;

  app.get('/task-names/paused', async (): Promise<PausedAnswer> => {
    const paused = await runtime.paused();
    return { paused: paused.map((p) => ({ name: p.name, pausedAt: p.pausedAt.toISOString() })) };
  });

  app.post('/task-names/:name/pause', async (request): Promise<TaskNameAnswer> => {
    const name = taskName(request);
    return { name, paused: true, changed: await runtime.pause(name) };
  });

  app.post('/task-names/:name/resume', async (request): Promise<TaskNameAnswer> => {
    const name = taskName(request);
    return { name, paused: false, changed: await runtime.resume(name) };
  });
  done();
};

function taskName(request: FastifyRequest): string {
  const { name } = request.params as { name: string };
  if (!isTaskName(name)) {
    throw new ApiError(
      'INVALID_TASK_NAME',
      `${JSON.stringify(name)} is not a task name: 1 to 200 characters, no leading or trailing spaces, no control characters (e.g. notifications.webhook)`,
    );
  }
  return name;
}
