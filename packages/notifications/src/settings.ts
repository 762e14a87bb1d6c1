import { InvalidOptionError, SECOND } from 'offload';
import { secondsVariable, wholeNumberVariable } from './env-values.js';
import { parseSmtpUrls, type SmtpProvider } from './channels/email.js';
import { checkVapidKeys, type VapidKeys } from './channels/web-push-crypto.js';
import { parseWebhookSecret, type WebhookSecret } from './channels/webhook-signature.js';
import { allowListProblem } from './net/host-policy.js';

/**
 * How notifications are delivered: which channels are configured and with what. Secrets (webhook
 * secrets, SMTP passwords, the VAPID private key) live here, never in task payloads or logs.
 */
export interface ChannelSettings {
  /** `ALLOW_PRIVATE_HOSTS`: host names or addresses that may be sent to although not public. */
  allowPrivateHosts: string[];
  /** `DELIVERY_TIMEOUT` (seconds, default 15): timeout of each outgoing call, in ms. */
  deliveryTimeout: number;
  /** `DELIVERY_ATTEMPTS` (default 5): attempts on each provider before the next is tried. */
  deliveryAttempts: number;
  /** `DELIVERY_BACKOFF` (seconds, default 2): delay before the first retry, doubling after; in ms. */
  deliveryBackoff: number;
  /**
   * Deliveries sent at once to one provider, across every process on the store: to one webhook
   * host (`WEBHOOK_HOST_CONCURRENCY`, default 10), one SMTP server (`SMTP_CONCURRENCY`, default
   * 5), one push service (`PUSH_CONCURRENCY`, default 50).
   */
  providerConcurrency: { webhook: number; email: number; push: number };
  /**
   * `PROVIDER_THROTTLE` (seconds, default 30): how long a provider that answers 429 without
   * Retry-After gets no delivery, in ms. With Retry-After, as long as it asks (at most an hour).
   */
  providerThrottle: number;
  /** `WEBHOOK_SECRET`: null leaves the webhook channel off. */
  webhook: { secrets: WebhookSecret[] } | null;
  /** `SMTP_URL` and `EMAIL_FROM`: null leaves the email channel off. */
  email: { providers: SmtpProvider[]; from: string } | null;
  /** `VAPID_PUBLIC_KEY`, `VAPID_PRIVATE_KEY`, `VAPID_SUBJECT`, `PUSH_TTL`: null leaves push off. */
  push: { vapid: VapidKeys; subject: string; ttl: number } | null;
}

export const DEFAULT_CHANNEL_SETTINGS: ChannelSettings = {
  allowPrivateHosts: [],
  deliveryTimeout: 15 * SECOND,
  deliveryAttempts: 5,
  deliveryBackoff: 2 * SECOND,
  providerConcurrency: { webhook: 10, email: 5, push: 50 },
  providerThrottle: 30 * SECOND,
  webhook: null,
  email: null,
  push: null,
};

/** The environment variables read here, for the README and for error messages. */
export const CHANNEL_VARIABLES = [
  'ALLOW_PRIVATE_HOSTS',
  'DELIVERY_TIMEOUT',
  'DELIVERY_ATTEMPTS',
  'DELIVERY_BACKOFF',
  'WEBHOOK_HOST_CONCURRENCY',
  'SMTP_CONCURRENCY',
  'PUSH_CONCURRENCY',
  'PROVIDER_THROTTLE',
  'WEBHOOK_SECRET',
  'SMTP_URL',
  'EMAIL_FROM',
  'VAPID_PUBLIC_KEY',
  'VAPID_PRIVATE_KEY',
  'VAPID_SUBJECT',
  'PUSH_TTL',
] as const;

type Read = (name: (typeof CHANNEL_VARIABLES)[number]) => string | undefined;

/** Reads the channel settings; throws an `InvalidOptionError` naming the first bad variable. */
export function readChannelSettings(read: Read): ChannelSettings {
  return {
    allowPrivateHosts: readAllowList(read),
    deliveryTimeout: secondsVariable(
      'DELIVERY_TIMEOUT',
      read('DELIVERY_TIMEOUT') ?? '15',
      0.001,
      600,
    ),
    deliveryAttempts: wholeNumberVariable(
      'DELIVERY_ATTEMPTS',
      read('DELIVERY_ATTEMPTS') ?? '5',
      1,
      100,
    ),
    deliveryBackoff: secondsVariable('DELIVERY_BACKOFF', read('DELIVERY_BACKOFF') ?? '2', 0, 3600),
    providerConcurrency: {
      webhook: wholeNumberVariable(
        'WEBHOOK_HOST_CONCURRENCY',
        read('WEBHOOK_HOST_CONCURRENCY') ?? '10',
        1,
        10_000,
      ),
      email: wholeNumberVariable('SMTP_CONCURRENCY', read('SMTP_CONCURRENCY') ?? '5', 1, 10_000),
      push: wholeNumberVariable('PUSH_CONCURRENCY', read('PUSH_CONCURRENCY') ?? '50', 1, 10_000),
    },
    providerThrottle: secondsVariable(
      'PROVIDER_THROTTLE',
      read('PROVIDER_THROTTLE') ?? '30',
      0,
      3600,
    ),
    webhook: readWebhook(read),
    email: readEmail(read),
    push: readPush(read),
  };
}

function readAllowList(read: Read): string[] {
  const entries = (read('ALLOW_PRIVATE_HOSTS') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  for (const entry of entries) {
    const problem = allowListProblem(entry);
    if (problem !== null) {
      throw new InvalidOptionError(
        'ALLOW_PRIVATE_HOSTS',
        `${JSON.stringify(entry)} ${problem}; e.g. ALLOW_PRIVATE_HOSTS=hooks.internal,10.0.0.7`,
      );
    }
  }
  return entries;
}

function readWebhook(read: Read): ChannelSettings['webhook'] {
  const text = read('WEBHOOK_SECRET');
  if (text === undefined) return null;
  const secrets: WebhookSecret[] = [];
  for (const part of text.split(/\s+/)) {
    const secret = parseWebhookSecret(part);
    if (typeof secret === 'string') throw new InvalidOptionError('WEBHOOK_SECRET', secret);
    secrets.push(secret);
  }
  return { secrets };
}

function readEmail(read: Read): ChannelSettings['email'] {
  const url = read('SMTP_URL');
  const from = read('EMAIL_FROM');
  if (url === undefined && from === undefined) return null;
  if (url === undefined)
    throw new InvalidOptionError('SMTP_URL', 'is required when EMAIL_FROM is set');
  if (from === undefined)
    throw new InvalidOptionError(
      'EMAIL_FROM',
      'is required when SMTP_URL is set, e.g. "Offload <noreply@example.com>"',
    );
  const providers = parseSmtpUrls(url);
  if (typeof providers === 'string') throw new InvalidOptionError('SMTP_URL', providers);
  if (!/^([^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/.test(from)) {
    throw new InvalidOptionError(
      'EMAIL_FROM',
      `must be an address, or a name and an address: "Offload <noreply@example.com>"`,
    );
  }
  return { providers, from };
}

function readPush(read: Read): ChannelSettings['push'] {
  // Checked even while push is off, so that a bad value is not found only once keys are set.
  const ttl = wholeNumberVariable('PUSH_TTL', read('PUSH_TTL') ?? '86400', 0, 28 * 86_400);
  const names = ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT'] as const;
  const [publicKey, privateKey, subject] = names.map((name) => read(name));
  const given = names.filter((name) => read(name) !== undefined);
  if (given.length === 0) return null;
  if (given.length < names.length) {
    const missing = names.find((name) => read(name) === undefined)!;
    throw new InvalidOptionError(
      missing,
      `is required with ${given.join(' and ')}; \`offload vapid\` prints a key pair`,
    );
  }
  const vapid = { publicKey: publicKey!, privateKey: privateKey! };
  const problem = checkVapidKeys(vapid);
  if (problem !== null) {
    const [name, ...rest] = problem.split(' ');
    throw new InvalidOptionError(name!, rest.join(' '));
  }
  if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/.test(subject!)) {
    throw new InvalidOptionError(
      'VAPID_SUBJECT',
      'must be a mailto: or https: URL where push services can reach you, e.g. mailto:ops@example.com',
    );
  }
  return {
    vapid,
    subject: subject!,
    ttl,
  };
}

/** What may be logged of the settings: which channels are on, never a secret. */
export function describeChannels(settings: ChannelSettings): Record<string, unknown> {
  return {
    allowPrivateHosts: settings.allowPrivateHosts,
    deliveryTimeout: settings.deliveryTimeout,
    deliveryAttempts: settings.deliveryAttempts,
    deliveryBackoff: settings.deliveryBackoff,
    providerConcurrency: settings.providerConcurrency,
    providerThrottle: settings.providerThrottle,
    webhook: settings.webhook ? `on, ${settings.webhook.secrets.length} secret(s)` : 'off',
    email: settings.email
      ? settings.email.providers.map((p) => `${p.name} ${p.host}:${p.port}`)
      : 'off',
    push: settings.push ? `on, TTL ${settings.push.ttl} s` : 'off',
  };
}
