export {
  NotificationError,
  parseNotifyRequest,
  type NotificationErrorCode,
  type NotificationRequest,
  type NotifyRequest,
  type RequestRules,
} from './notification.js';
export {
  CHANNELS,
  deliveryTaskName,
  type ChannelName,
  type Delivery,
  type DeliveryCall,
  type DeliveryResult,
  type PushSubscription,
  type Recipient,
} from './delivery.js';
export { CALL_OUTCOMES, type CallOutcome } from './delivery-errors.js';
export {
  DEMO_TASK,
  deliveryKey,
  deliveryKeyPrefix,
  demoNotificationTask,
  LOG_TASK,
  NOTIFICATION_ID,
  notificationId,
  Notifications,
  notificationTasks,
  requestDigest,
  type NotificationTaskOptions,
} from './tasks.js';
export {
  CHANNEL_VARIABLES,
  DEFAULT_CHANNEL_SETTINGS,
  describeChannels,
  readChannelSettings,
  type ChannelSettings,
} from './settings.js';
export { generateVapidKeys } from './channels/web-push-crypto.js';
export type { Resolver } from './net/host-policy.js';
