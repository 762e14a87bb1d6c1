import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import {
  InvalidOptionError,
  isTaskName,
  type Json,
  type Schedule,
  type ScheduleRule,
} from 'offload';
import {
  NotificationError,
  notificationId,
  parseNotifyRequest,
  type NotificationErrorCode,
  type Notifications,
} from '@offload/notifications';
import { ApiError } from '../errors.js';
import { SCHEDULED_NOTIFICATION_TASK } from '../scheduled-notification.js';

export interface ScheduleRoutesOptions {
  notifications: Notifications;
}

/** A schedule as the API answers it; times are ISO 8601, absent ones null. */
export interface ScheduleView {
  name: string;
  cron?: string;
  timezone?: string;
  /** A duration such as `30s`, as PUT takes it. */
  every?: string;
  catchUp: string;
  maxCatchUp: number;
  /** The notify body the schedule delivers; absent for a schedule of another task. */
  notification?: Json;
  /** For a schedule of another task (set by an app on the same store): its task and payload. */
  task?: string;
  payload?: Json;
  paused: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  lastTaskId: string | null;
  createdAt: string;
  updatedAt: string;
}

const BODY_KEYS = ['cron', 'timezone', 'every', 'catchUp', 'maxCatchUp', 'notification'];
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/**
 * Notification schedules: `PUT /schedules/:name` creates or replaces one, which delivers what
 * `POST /notifications/notify` with its `notification` body would, at each due time. `GET`,
 * `POST …/pause`, `POST …/resume` and `DELETE` do what they say.
 */
export const scheduleRoutes: FastifyPluginCallback<ScheduleRoutesOptions> = (
  app,
  { notifications },
  done,
) => {
  const { schedules } = app.offload;

  app.put('/schedules/:name', async (request): Promise<ScheduleView> => {
    const name = scheduleName(request);
    const { rule, notification } = readBody(request.body);
    // Checked exactly as a notify request is, size included: a schedule that could not deliver
    // is refused now rather than failing at each due time.
    try {
      notifications.plan(
        await notifications.prepare(parseNotifyRequest(notification, notifications.rules)),
        notificationId(),
        new Date(),
      );
    } catch (error) {
      if (!(error instanceof NotificationError)) throw error;
      throw new ApiError(error.code as NotificationErrorCode, `notification: ${error.message}`, {
        cause: error,
      });
    }
    try {
      const schedule = await schedules.set(name, rule, SCHEDULED_NOTIFICATION_TASK, notification);
      return view(schedule as Schedule);
    } catch (error) {
      if (!(error instanceof InvalidOptionError)) throw error;
      // The library names `schedule rule.cron`; the client sent `cron`.
      const message = error.message.replace(/^schedule rule\.?/, '').replace(/^: /, '');
      throw new ApiError('INVALID_SCHEDULE', message, { cause: error });
    }
  });

  app.get('/schedules', async (): Promise<{ schedules: ScheduleView[] }> => ({
    schedules: (await schedules.list()).map(view),
  }));

  app.get('/schedules/:name', async (request): Promise<ScheduleView> => {
    const name = scheduleName(request);
    const schedule = await schedules.get(name);
    if (!schedule) throw notFound(name);
    return view(schedule);
  });

  app.post('/schedules/:name/pause', async (request): Promise<ScheduleView> =>
    view(await schedules.pause(scheduleName(request))),
  );
  app.post('/schedules/:name/resume', async (request): Promise<ScheduleView> =>
    view(await schedules.resume(scheduleName(request))),
  );

  app.delete('/schedules/:name', async (request, reply) => {
    const name = scheduleName(request);
    if (!(await schedules.remove(name))) throw notFound(name);
    return reply.code(204).send();
  });
  done();
};

function scheduleName(request: FastifyRequest): string {
  const { name } = request.params as { name: string };
  if (!isTaskName(name)) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      `${JSON.stringify(name)} is not a schedule name: use 1 to 200 characters without leading or trailing spaces or control characters`,
    );
  }
  return name;
}

/** The rule and the notification of a PUT body, its shape checked (the values by the library). */
function readBody(body: unknown): { rule: ScheduleRule; notification: Json } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      'the body must be a JSON object such as {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin", "notification": {…}}',
    );
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !BODY_KEYS.includes(key));
  if (unknown !== undefined) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      `${JSON.stringify(unknown)} is not a field of a schedule; use ${BODY_KEYS.join(', ')}`,
    );
  }
  if (fields.notification === undefined) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      'notification: is required: the body of a notify request to deliver at each due time ({} for the demo notification)',
    );
  }
  const { notification, every, ...rest } = fields;
  const rule = { ...rest } as Record<string, unknown>;
  if (every !== undefined) rule.every = duration(every);
  return { rule: rule as unknown as ScheduleRule, notification: notification as Json };
}

/** `30s`, `5m`, `1h`, `1d` or `1500ms`, in milliseconds; at least 1 s. */
function duration(every: unknown): number {
  const match = typeof every === 'string' ? DURATION.exec(every) : null;
  if (!match) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      `every: must be a duration such as "30s", "5m", "1h" or "1d", got ${JSON.stringify(every)}`,
    );
  }
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  if (ms < 1000) {
    throw new ApiError(
      'INVALID_SCHEDULE',
      `every: must be at least 1s, got ${JSON.stringify(every)}`,
    );
  }
  return ms;
}

/** Milliseconds as the largest whole unit: 30000 → `30s`. */
function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  }
  return `${ms}ms`;
}

function view(schedule: Schedule): ScheduleView {
  const { rule } = schedule;
  const iso = (date: Date | null) => (date === null ? null : date.toISOString());
  const ours = schedule.task === SCHEDULED_NOTIFICATION_TASK;
  return {
    name: schedule.name,
    ...('every' in rule
      ? { every: formatDuration(rule.every) }
      : { cron: rule.cron, timezone: rule.timezone }),
    catchUp: rule.catchUp,
    maxCatchUp: rule.maxCatchUp,
    ...(ours
      ? { notification: schedule.payload }
      : { task: schedule.task, payload: schedule.payload }),
    paused: schedule.paused,
    nextRunAt: iso(schedule.nextRunAt),
    lastRunAt: iso(schedule.lastRunAt),
    lastTaskId: schedule.lastTaskId,
    createdAt: schedule.createdAt.toISOString(),
    updatedAt: schedule.updatedAt.toISOString(),
  };
}

function notFound(name: string): ApiError {
  return new ApiError(
    'SCHEDULE_NOT_FOUND',
    `no schedule is named ${JSON.stringify(name)}; GET /api/schedules lists them`,
  );
}
