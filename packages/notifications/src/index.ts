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
  deliveryKey,
  deliveryKeyPrefix,
  deliveryTaskName,
  type ChannelName,
  type Delivery,
  type InlineDelivery,
  type SharedDelivery,
  type DeliveryCall,
  type DeliveryResult,
  type PushSubscription,
  type Recipient,
} from './delivery.js';
export { CALL_OUTCOMES, type CallOutcome } from './delivery-errors.js';
export {
  DEMO_TASK,
  demoNotificationTask,
  LOG_TASK,
  MAX_NOTIFICATION_BYTES,
  NOTIFICATION_ID,
  notificationId,
  Notifications,
  notificationTasks,
  plannedDeferrals,
  requestDigest,
  type NotificationTaskOptions,
} from './tasks.js';
export {
  CONTENT_KEY,
  CONTENT_TASK,
  contentKey,
  type NotificationContent,
  type StoredContent,
} from './content.js';
export {
  CHANNEL_VARIABLES,
  DEFAULT_CHANNEL_SETTINGS,
  describeChannels,
  readChannelSettings,
  type ChannelSettings,
} from './settings.js';
export { MAX_SEND_AHEAD } from './send-at.js';
export { generateVapidKeys } from './channels/web-push-crypto.js';
export type { Resolver } from './net/host-policy.js';
export { secondsVariable, wholeNumberVariable } from './env-values.js';
export { RECIPIENT_ID, checkPushSize, type RecipientsRequest } from './notification.js';
export type { PlannedDelivery, PreparedNotification, RecipientReport } from './prepare.js';
export {
  Templates,
  TEMPLATE_NAME,
  type RenderedTemplate,
  type TemplateSource,
  type TemplateVersion,
} from './templates.js';
export {
  RecipientBook,
  RECIPIENT_CHANNELS,
  type RecipientProfile,
  type StoredRecipient,
} from './recipient-book.js';
export { Suppressions, SUPPRESSION_ID, suppressionId, type Suppression } from './suppressions.js';
export {
  DEFAULT_LINK_LIFETIME,
  UNSUBSCRIBE_PATH,
  UnsubscribeLinks,
  type UnsubscribeSettings,
} from './unsubscribe.js';
export {
  deferral,
  WEEKDAYS,
  type Deferral,
  type DeliveryHours,
  type QuietHours,
  type SendWindow,
  type Weekday,
} from './delivery-hours.js';
export {
  DEFAULT_DIGEST_TEMPLATE,
  DIGEST_CLAIM_TASK,
  DIGEST_TASK,
  Digests,
  type DigestEvent,
  type DigestResult,
  type DigestRuntime,
  type DigestWindow,
  type JoinedDigest,
} from './digests.js';
export { type DigestRequest, MAX_DIGEST_WINDOW, MIN_DIGEST_WINDOW } from './digest-request.js';
export {
  Inbox,
  inboxFeed,
  MAX_INBOX_PAGE,
  type InboxListener,
  type InboxMessage,
  type InboxPage,
} from './inbox.js';
export { InboxTokens, INBOX_TOKEN, MIN_INBOX_SECRET_LENGTH } from './inbox-tokens.js';
