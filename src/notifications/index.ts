export {
  CHANNELS,
  NotificationError,
  parseNotifyRequest,
  type Channel,
  type Notification,
  type NotifyRequest,
} from './notification.js';
export {
  DEMO_TASK,
  demoNotificationTask,
  LOG_TASK,
  logNotificationTask,
  notificationTask,
  notificationTasks,
  type NotificationTaskOptions,
} from './tasks.js';
