import {
  defineTask,
  PermanentError,
  type Json,
  type Task,
  type TaskDefinition,
  type TaskRequest,
} from 'offload';
import {
  NotificationError,
  notificationId,
  parseNotifyRequest,
  type Notifications,
} from '@offload/notifications';

/** The task a notification schedule fires: its payload is the body of a notify request. */
export const SCHEDULED_NOTIFICATION_TASK = 'notifications.scheduled';

/**
 * Delivers what a notify request with the stored body would: the body is checked again by the
 * rules of the process that runs it (a channel may have been turned off since the schedule was
 * set: then it fails for good, saying why), planned into the same tasks, and enqueued. The
 * notification's id comes from this task's id, so a retry after the enqueue adds nothing.
 */
export function scheduledNotificationTask(
  notifications: Notifications,
  enqueue: (requests: TaskRequest[]) => Promise<Task[]>,
): TaskDefinition<Json> {
  return defineTask<Json>({
    name: SCHEDULED_NOTIFICATION_TASK,
    async run(body, ctx) {
      let requests: TaskRequest[];
      const id = notificationId(`schedule-task:${ctx.taskId}`);
      try {
        requests = notifications.plan(
          await notifications.prepare(parseNotifyRequest(body, notifications.rules)),
          id,
          new Date(),
        );
      } catch (error) {
        if (!(error instanceof NotificationError)) throw error;
        throw new PermanentError(
          `the scheduled notification is no longer valid here: ${error.message}; set the schedule again with PUT /api/schedules/:name`,
          { cause: error },
        );
      }
      const tasks = await enqueue(requests);
      return { notification: id, tasks: tasks.map((task) => task.id) };
    },
  });
}
