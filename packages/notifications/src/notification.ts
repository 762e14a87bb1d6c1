import { InvalidPayloadError, OffloadError, type Json } from 'offload';
import { encodeJson, MAX_JSON_DEPTH } from 'offload';
import { MAX_PUSH_PLAINTEXT } from './channels/web-push-crypto.js';
import { pushMessage } from './channels/push.js';
import type { NotificationContent } from './content.js';
import { CHANNELS, type ChannelName, type OutgoingDelivery, type Recipient } from './delivery.js';
import type { HostPolicy } from './net/host-policy.js';
import { characters, checkRecipient, MAX_RECIPIENTS, tooLong } from './recipients.js';
import { readSendAt } from './send-at.js';
import { readDigest, type DigestRequest } from './digest-request.js';

/** A notification as a client describes it in `POST /api/notifications/notify`, checked. */
export interface NotificationRequest {
  channel: ChannelName;
  /** One delivery each, in this order. */
  to: Recipient[];
  subject: string | null;
  body: string | null;
  /** An HTML alternative of `body`, for email. */
  html: string | null;
  /** Extra structured data, passed through to the channel (and the template's variables). */
  data: { [key: string]: Json } | null;
  /** A stored template to render with `data`, in place of subject, body and html. */
  template: string | null;
}

/**
 * A notification to stored recipients, by id (see recipient-book.ts): each gets it on the
 * channels it has and has not turned off for `topic`.
 */
export interface RecipientsRequest {
  recipients: string[];
  topic: string | null;
  subject: string | null;
  body: string | null;
  html: string | null;
  data: { [key: string]: Json } | null;
  template: string | null;
}

/**
 * What a request asks for: the demo notification, or a real one; delivered from `sendAt` on (at
 * once for a time in the past, or when it is null).
 */
export type NotifyRequest = (
  | { kind: 'demo' }
  | { kind: 'notification'; notification: NotificationRequest }
  | { kind: 'recipients'; notification: RecipientsRequest }
) & {
  sendAt: Date | null;
  /** Sent at once, whatever the recipients' quiet hours and send windows. */
  critical?: boolean;
  /** Joined to a digest of the recipient, sent when its window closes (see digests.ts). */
  digest?: DigestRequest;
};

export type NotificationErrorCode =
  | 'INVALID_NOTIFICATION'
  | 'UNKNOWN_CHANNEL'
  | 'CHANNEL_NOT_CONFIGURED'
  | 'UNKNOWN_TOPIC'
  | 'UNKNOWN_TEMPLATE'
  | 'TEMPLATE_RENDER_FAILED'
  | 'INVALID_TEMPLATE'
  | 'INVALID_RECIPIENT'
  | 'INVALID_UNSUBSCRIBE_TOKEN';

/** A notification request that cannot be accepted; `field` names what to fix. */
export class NotificationError extends OffloadError {
  constructor(
    code: NotificationErrorCode,
    readonly field: string,
    message: string,
  ) {
    super(code, message);
  }
}

/** What a request is checked against besides its own shape. */
export interface RequestRules {
  /** The SSRF rules: a URL whose host is a refused IP address is a 400 at once. */
  policy: HostPolicy;
  /** Why `channel` cannot be used in this service (not configured), or null when it can. */
  unavailable(channel: ChannelName): string | null;
  /** The topics notifications may name (`NOTIFICATION_TOPICS`). */
  topics: ReadonlySet<string>;
}

const FIELDS = [
  'channel',
  'to',
  'recipients',
  'topic',
  'template',
  'subject',
  'body',
  'html',
  'data',
  'sendAt',
  'critical',
  'digest',
];
const LIMITS = { subject: 200, body: 10_000, html: 50_000 };

/**
 * Reads a notify request body, at `now`. No body, or `{}`, asks for the demo notification (and a
 * body with `sendAt` only, for it later); anything else must describe a notification completely,
 * every recipient included, so that bad input is refused now rather than failing later as a task.
 */
export function parseNotifyRequest(
  body: unknown,
  rules: RequestRules,
  now = new Date(),
): NotifyRequest {
  if (body === undefined) return { kind: 'demo', sendAt: null };
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(
      'body',
      'the body must be a JSON object, e.g. {"channel":"log","to":"ops"}, or empty for the demo notification',
    );
  }
  const fields = body as Record<string, unknown>;
  const keys = Object.keys(fields);
  const unknown = keys.find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) {
    throw invalid(
      unknown,
      `unknown field ${JSON.stringify(unknown)}; a notification has the fields ${FIELDS.join(', ')}`,
    );
  }
  const when = readSendAt(fields.sendAt, now);
  if ('problem' in when) throw invalid('sendAt', when.problem);
  const sendAt = when.at;
  if (keys.every((key) => key === 'sendAt')) return { kind: 'demo', sendAt };
  const critical = readCritical(fields.critical);
  const digest = readDigestField(fields, critical, sendAt);
  const extras = { ...critical, ...digest };
  const data = fields.data ?? null;
  if (data !== null && (typeof data !== 'object' || Array.isArray(data))) {
    throw invalid('data', 'data must be a JSON object when given');
  }
  if (data !== null) checkStorable(data);
  const template = readTemplateName(fields);
  const content = {
    subject: text(fields, 'subject'),
    body: text(fields, 'body'),
    html: text(fields, 'html'),
    data: data as NotificationRequest['data'],
    template,
  };
  if (fields.recipients !== undefined) {
    if (fields.to !== undefined || fields.channel !== undefined) {
      throw invalid(
        fields.to !== undefined ? 'to' : 'channel',
        'recipients take the place of channel and to: each recipient is sent on the channels it has',
      );
    }
    const notification: RecipientsRequest = {
      recipients: readRecipientIds(fields.recipients),
      topic: readTopic(fields.topic, rules),
      ...content,
    };
    return { kind: 'recipients', notification, sendAt, ...extras };
  }
  if (fields.topic !== undefined) {
    throw invalid('topic', 'topic is for notifications to recipients by id ("recipients")');
  }
  const channel = readChannel(fields.channel, rules);
  const notification: NotificationRequest = {
    channel,
    to: readRecipients(channel, fields.to, rules),
    ...content,
  };
  if (notification.html !== null && channel !== 'email') {
    throw invalid('html', `html is for the email channel only; send the text as "body"`);
  }
  if (channel === 'email' && notification.subject !== null && /[\r\n]/.test(notification.subject)) {
    throw invalid('subject', 'an email subject must be one line');
  }
  if (channel === 'push' && template === null) checkPushSize(notification);
  return { kind: 'notification', notification, sendAt, ...extras };
}

function readDigestField(
  fields: Record<string, unknown>,
  critical: { critical?: true },
  sendAt: Date | null,
): { digest?: DigestRequest } {
  const read = readDigest(fields.digest);
  if ('problem' in read) throw invalid(read.field, read.problem);
  if (read.digest === null) return {};
  if (critical.critical) {
    throw invalid('critical', 'a critical notification is sent at once: leave out digest');
  }
  if (sendAt !== null) {
    throw invalid('sendAt', 'a digest is sent when its window closes: leave out sendAt');
  }
  return { digest: read.digest };
}

function readCritical(value: unknown): { critical?: true } {
  if (value === undefined || value === null || value === false) return {};
  if (value !== true) {
    throw invalid(
      'critical',
      "critical must be true or false; true sends at once, whatever the recipients' quiet hours and send windows",
    );
  }
  return { critical: true };
}

/** The template's name; with a template, the text comes from it, not from the request. */
function readTemplateName(fields: Record<string, unknown>): string | null {
  const { template } = fields;
  if (template === undefined || template === null) return null;
  if (typeof template !== 'string' || template.length === 0 || template.length > 100) {
    throw invalid('template', 'template must be the name of a stored template, e.g. "welcome"');
  }
  const given = ['subject', 'body', 'html'].find((field) => fields[field] !== undefined);
  if (given !== undefined) {
    throw invalid(given, `${given} comes from the template; send its variables as "data"`);
  }
  return template;
}

/** A recipient's id: what `PUT /api/recipients/:id` takes. */
export const RECIPIENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$/;

function readRecipientIds(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_RECIPIENTS) {
    throw invalid(
      'recipients',
      `recipients must list 1 to ${MAX_RECIPIENTS} recipient ids, e.g. ["u42"]`,
    );
  }
  const seen = new Set<string>();
  return value.map((id: unknown, i) => {
    if (typeof id !== 'string' || !RECIPIENT_ID.test(id)) {
      throw new NotificationError(
        'INVALID_RECIPIENT',
        `recipients[${i}]`,
        `recipients[${i}] is not a recipient id: use 1 to 100 of A-Z, a-z, 0-9, "_", ".", "@", ":" and "-", starting with a letter or digit`,
      );
    }
    if (seen.has(id)) throw invalid(`recipients[${i}]`, `recipients lists ${id} twice`);
    seen.add(id);
    return id;
  });
}

function readTopic(value: unknown, rules: RequestRules): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !rules.topics.has(value)) {
    const known = [...rules.topics];
    throw new NotificationError(
      'UNKNOWN_TOPIC',
      'topic',
      `topic ${JSON.stringify(String(value).slice(0, 100))} is not declared; ${known.length === 0 ? 'this service declares no topics (set NOTIFICATION_TOPICS)' : `use one of: ${known.join(', ')}`}`,
    );
  }
  return value;
}

function readChannel(channel: unknown, rules: RequestRules): ChannelName {
  if (channel === undefined) {
    throw invalid(
      'channel',
      `channel is required to describe a notification (one of: ${CHANNELS.join(', ')}); send no body for the demo notification`,
    );
  }
  if (typeof channel !== 'string')
    throw invalid('channel', `channel must be a string, one of: ${CHANNELS.join(', ')}`);
  if (!(CHANNELS as readonly string[]).includes(channel)) {
    throw new NotificationError(
      'UNKNOWN_CHANNEL',
      'channel',
      `channel ${JSON.stringify(channel)} is not known; use one of: ${CHANNELS.join(', ')}`,
    );
  }
  const why = rules.unavailable(channel as ChannelName);
  if (why !== null) throw new NotificationError('CHANNEL_NOT_CONFIGURED', 'channel', why);
  return channel as ChannelName;
}

function readRecipients(channel: ChannelName, to: unknown, rules: RequestRules): Recipient[] {
  if (to === undefined || to === null) {
    throw invalid('to', `to is required: one recipient, or a list of 1 to ${MAX_RECIPIENTS}`);
  }
  const list = Array.isArray(to);
  const values: unknown[] = list ? to : [to];
  if (values.length === 0 || values.length > MAX_RECIPIENTS) {
    throw invalid('to', `to must list 1 to ${MAX_RECIPIENTS} recipients, got ${values.length}`);
  }
  return values.map((value, i) => {
    const field = list ? `to[${i}]` : 'to';
    const checked = checkRecipient(channel, value, field, rules.policy);
    if (checked.problem !== undefined) throw invalid(field, checked.problem);
    return checked.value;
  });
}

function text(fields: Record<string, unknown>, name: keyof typeof LIMITS): string | null {
  const value = fields[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || tooLong(value, LIMITS[name])) {
    throw invalid(
      name,
      `${name} must be a string of 1 to ${LIMITS[name]} characters, got ${describe(value)}`,
    );
  }
  return value;
}

/** A push message must fit one encrypted record of 4 KiB: refuse a larger one now. */
export function checkPushSize(content: NotificationContent): void {
  const sample: OutgoingDelivery = {
    ...content,
    notification: 'n'.repeat(40),
    index: 0,
    createdAt: '',
    to: '',
  };
  const size = pushMessage(sample).length;
  if (size > MAX_PUSH_PLAINTEXT) {
    throw invalid(
      'body',
      `a push message holds at most ${MAX_PUSH_PLAINTEXT} bytes of JSON, and this one takes ${size}: shorten body, subject or data`,
    );
  }
}

/**
 * `data` is stored in the task's payload, which must come back from JSON unchanged: a number too
 * large for a double (`1e999` parses as Infinity) or nesting deeper than the payload allows is a
 * 400 now, not a failed store later.
 */
function checkStorable(data: unknown): void {
  try {
    // One level down: data is a field of the delivery's payload.
    encodeJson(data, 'data', 1);
  } catch (error) {
    if (!(error instanceof InvalidPayloadError)) throw error;
    throw invalid(
      error.path,
      `${error.path} ${error.problem}; data must be plain JSON with finite numbers, nested at most ${MAX_JSON_DEPTH - 1} levels deep`,
    );
  }
}

function invalid(field: string, message: string): NotificationError {
  return new NotificationError('INVALID_NOTIFICATION', field, message);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of ${characters(value)} characters`;
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : `a ${typeof value}`;
}
