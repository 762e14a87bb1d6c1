import { setTimeout as sleep } from 'node:timers/promises';
import { defineTask, SECOND, type TaskDefinition } from '../index.js';
import type { Notification, NotifyRequest } from './notification.js';

export const DEMO_TASK = 'notifications.demo';
export const LOG_TASK = 'notifications.log';

export interface NotificationTaskOptions {
  /** How long the demo notification "works", in ms; the seed's is 2 s. */
  demoDelay?: number;
}

/** The seed's demo: logs, does `delay` ms of (abortable) async work, logs again. */
export function demoNotificationTask(delay = 2 * SECOND): TaskDefinition<Record<string, never>> {
  return defineTask<Record<string, never>>({
    name: DEMO_TASK,
    async run(_payload, ctx) {
      ctx.logger.info({}, 'Starting background notification task...');
      await sleep(delay, undefined, { signal: ctx.signal });
      ctx.logger.info({}, 'Background notification sent successfully!');
    },
  });
}

/** Delivers a notification on the `log` channel: one structured log line per notification. */
export const logNotificationTask: TaskDefinition<Notification> = defineTask<Notification>({
  name: LOG_TASK,
  run({ to, subject, body, data }, ctx) {
    ctx.logger.info(
      { channel: 'log', to, subject, body, data },
      'notification delivered on the log channel',
    );
  },
});

/** Every task the notification service runs; give them to `createRuntime({ tasks })`. */
export function notificationTasks(options: NotificationTaskOptions = {}): TaskDefinition<never>[] {
  return [demoNotificationTask(options.demoDelay), logNotificationTask] as TaskDefinition<never>[];
}

/** The task (by name) and payload that deliver what a notify request asks for. */
export function notificationTask(request: NotifyRequest): { task: string; payload: object } {
  return request.kind === 'demo'
    ? { task: DEMO_TASK, payload: {} }
    : { task: LOG_TASK, payload: request.notification };
}
