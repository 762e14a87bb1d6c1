import { createHmac } from 'node:crypto';

/** A webhook signing secret: `whsec_` and the base64 of 24 to 64 random bytes. */
export interface WebhookSecret {
  key: Buffer;
}

export const WEBHOOK_SECRET_PREFIX = 'whsec_';

/**
 * Reads one secret as Standard Webhooks writes it (`whsec_<base64>`). Returns a message saying
 * what is wrong instead when it is not one; the secret itself is never part of that message.
 */
export function parseWebhookSecret(text: string): WebhookSecret | string {
  if (!text.startsWith(WEBHOOK_SECRET_PREFIX))
    return `each secret must start with "${WEBHOOK_SECRET_PREFIX}"`;
  const encoded = text.slice(WEBHOOK_SECRET_PREFIX.length);
  const key = Buffer.from(encoded, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || key.length < 24 || key.length > 64) {
    return `each secret must be "${WEBHOOK_SECRET_PREFIX}" followed by the base64 of 24 to 64 random bytes (e.g. ${WEBHOOK_SECRET_PREFIX}$(openssl rand -base64 32))`;
  }
  return { key };
}

/** The Standard Webhooks headers of one message: `webhook-id`, `-timestamp` and `-signature`. */
export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Signs `body` as the Standard Webhooks specification says: for each secret,
 * `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, separated by spaces so that a receiver
 * rotating its secret accepts either. `timestamp` is in seconds since the epoch.
 */
export function signWebhook(
  secrets: readonly WebhookSecret[],
  id: string,
  timestamp: number,
  body: string,
): WebhookHeaders {
  const signed = `${id}.${timestamp}.${body}`;
  const signatures = secrets.map(
    ({ key }) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`,
  );
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}
