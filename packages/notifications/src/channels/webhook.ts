import {
  hostKey,
  type OutgoingDelivery,
  type Recipient,
  type SendContext,
  type Sender,
} from '../delivery.js';
import type { HttpClient } from '../net/http-client.js';
import { checkAnswer } from './http-answer.js';
import { signWebhook, type WebhookSecret } from './webhook-signature.js';

export interface WebhookSenderOptions {
  client: HttpClient;
  /** `WEBHOOK_SECRET`: every message is signed with each. */
  secrets: readonly WebhookSecret[];
  /** Timeout of one request, in ms. */
  timeout: number;
  /** How long a 429 without Retry-After holds the host back, in ms. */
  throttle: number;
  now?: () => number;
}

/** The JSON body a webhook receives. */
export interface WebhookMessage {
  type: 'notification';
  /** When the notification was accepted, ISO 8601: the same on every retry. */
  timestamp: string;
  data: {
    notification: string;
    subject: string | null;
    body: string | null;
    data: OutgoingDelivery['data'];
  };
}

/**
 * POSTs the notification as JSON to the recipient URL, signed as Standard Webhooks says. The
 * message id (`webhook-id`) is the same on every retry, so receivers can drop duplicates.
 */
export class WebhookSender implements Sender {
  readonly channel = 'webhook';
  readonly providers = ['http'];
  private readonly now: () => number;

  constructor(private readonly options: WebhookSenderOptions) {
    this.now = options.now ?? Date.now;
  }

  suppressionAddress(delivery: OutgoingDelivery): string {
    return String(delivery.to);
  }

  /** One key per host (and port): each receiving server has its own limit and throttle. */
  providerKey(to: Recipient): string | null {
    return hostKey('webhook', typeof to === 'string' ? to : null);
  }

  async send(delivery: OutgoingDelivery, { signal, traceparent }: SendContext): Promise<string> {
    const url = new URL(String(delivery.to));
    const message: WebhookMessage = {
      type: 'notification',
      timestamp: delivery.createdAt,
      data: {
        notification: delivery.notification,
        subject: delivery.subject,
        body: delivery.body,
        data: delivery.data,
      },
    };
    const body = JSON.stringify(message);
    const now = this.now();
    const id = `msg_${delivery.notification}_${delivery.index}`;
    const response = await this.options.client.post({
      url,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'offload-webhooks',
        ...signWebhook(this.options.secrets, id, Math.floor(now / 1000), body),
        // The receiver continues the trace of the request that notified (docs/tracing.md).
        ...(traceparent === null ? {} : { traceparent }),
      },
      body,
      timeout: this.options.timeout,
      signal,
    });
    return checkAnswer(response, {
      target: url.origin,
      gone: [410],
      createdAt: Date.parse(delivery.createdAt),
      now: this.now(),
      throttle: this.options.throttle,
    });
  }
}
