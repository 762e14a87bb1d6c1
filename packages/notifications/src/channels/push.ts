import { HOUR } from 'offload';
import {
  hostKey,
  type OutgoingDelivery,
  type PushSubscription,
  type Recipient,
  type SendContext,
  type Sender,
} from '../delivery.js';
import type { HttpClient } from '../net/http-client.js';
import { checkAnswer } from './http-answer.js';
import { encryptPushMessage, vapidAuthorization, type VapidKeys } from './web-push-crypto.js';

export interface PushSenderOptions {
  client: HttpClient;
  vapid: VapidKeys;
  /** `VAPID_SUBJECT`: a `mailto:` or `https:` URL where the push service can reach the sender. */
  subject: string;
  /** How long the push service keeps an undelivered message, in seconds (the `TTL` header). */
  ttl: number;
  /** Timeout of one request, in ms. */
  timeout: number;
  /** How long a 429 without Retry-After holds the push service back, in ms. */
  throttle: number;
  now?: () => number;
}

/** The JSON a service worker receives in its `push` event (`event.data.json()`). */
export interface PushMessage {
  notification: string;
  title: string | null;
  body: string | null;
  data: OutgoingDelivery['data'];
}

/** The plaintext of a delivery's push message. */
export function pushMessage(delivery: OutgoingDelivery): Buffer {
  const message: PushMessage = {
    notification: delivery.notification,
    title: delivery.title ?? delivery.subject,
    body: delivery.body,
    data: delivery.data,
  };
  return Buffer.from(JSON.stringify(message));
}

/**
 * Web Push: the message is encrypted for the subscription (RFC 8291), the request signed with
 * VAPID (RFC 8292) and POSTed to the subscription's endpoint through the guarded HTTP client.
 * 404 or 410 from the push service means the subscription is gone.
 */
export class PushSender implements Sender {
  readonly channel = 'push';
  readonly providers = ['web-push'];
  private readonly now: () => number;

  constructor(private readonly options: PushSenderOptions) {
    this.now = options.now ?? Date.now;
  }

  suppressionAddress(delivery: OutgoingDelivery): string {
    return (delivery.to as PushSubscription).endpoint;
  }

  /** One key per push service host (FCM, Mozilla's, Apple's). */
  providerKey(to: Recipient): string | null {
    const endpoint = (to as Partial<PushSubscription> | null)?.endpoint;
    return hostKey('push', typeof endpoint === 'string' ? endpoint : null);
  }

  async send(delivery: OutgoingDelivery, { signal }: SendContext): Promise<string> {
    const subscription = delivery.to as PushSubscription;
    const url = new URL(subscription.endpoint);
    const body = encryptPushMessage(pushMessage(delivery), {
      p256dh: Buffer.from(subscription.keys.p256dh, 'base64url'),
      auth: Buffer.from(subscription.keys.auth, 'base64url'),
    });
    const { vapid, subject, ttl, timeout } = this.options;
    const response = await this.options.client.post({
      url,
      headers: {
        'content-type': 'application/octet-stream',
        'content-encoding': 'aes128gcm',
        ttl: String(ttl),
        urgency: 'normal',
        authorization: vapidAuthorization(vapid, url.origin, subject, this.now(), 12 * HOUR),
      },
      body,
      timeout,
      signal,
    });
    return checkAnswer(response, {
      target: url.origin,
      gone: [404, 410],
      createdAt: Date.parse(delivery.createdAt),
      now: this.now(),
      throttle: this.options.throttle,
    });
  }
}
