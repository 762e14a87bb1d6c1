import { OffloadError, type Json } from '../index.js';

/** The channels notifications can be delivered on. Webhook, email and Web Push come later. */
export const CHANNELS = ['log'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A notification to deliver, as a client describes it in `POST /api/notifications/notify`. */
export interface Notification {
  channel: Channel;
  /** Who it is for: an address, a user id or a label, as the channel understands it. */
  to: string;
  subject: string | null;
  body: string | null;
  /** Extra structured data, passed through to the channel. */
  data: { [key: string]: Json } | null;
}

/** What a request asks for: the seed's demo notification, or a real one. */
export type NotifyRequest = { kind: 'demo' } | { kind: 'notification'; notification: Notification };

/** A notification request that cannot be accepted; `field` names what to fix. */
export class NotificationError extends OffloadError {
  constructor(
    code: 'INVALID_NOTIFICATION' | 'UNKNOWN_CHANNEL',
    readonly field: string,
    message: string,
  ) {
    super(code, message);
  }
}

const FIELDS = ['channel', 'to', 'subject', 'body', 'data'];
const LIMITS = { to: 320, subject: 200, body: 10_000 };

/**
 * Reads a notify request body. No body, or `{}`, asks for the demo notification; anything else
 * must describe a notification completely, so that bad input is refused now rather than failing
 * later as a task.
 */
export function parseNotifyRequest(body: unknown): NotifyRequest {
  if (body === undefined) return { kind: 'demo' };
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid(
      'body',
      'the body must be a JSON object, e.g. {"channel":"log","to":"ops"}, or empty for the demo notification',
    );
  }
  const fields = body as Record<string, unknown>;
  const keys = Object.keys(fields);
  if (keys.length === 0) return { kind: 'demo' };
  const unknown = keys.find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) {
    throw invalid(
      unknown,
      `unknown field ${JSON.stringify(unknown)}; a notification has the fields ${FIELDS.join(', ')}`,
    );
  }
  const { channel } = fields;
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
  const data = fields.data ?? null;
  if (data !== null && (typeof data !== 'object' || Array.isArray(data))) {
    throw invalid('data', 'data must be a JSON object when given');
  }
  return {
    kind: 'notification',
    notification: {
      channel: channel as Channel,
      to: text(fields, 'to', true)!,
      subject: text(fields, 'subject', false),
      body: text(fields, 'body', false),
      data: data as Notification['data'],
    },
  };
}

function text(
  fields: Record<string, unknown>,
  name: keyof typeof LIMITS,
  required: boolean,
): string | null {
  const value = fields[name];
  if (value === undefined || value === null) {
    if (required)
      throw invalid(name, `${name} is required: a string of 1 to ${LIMITS[name]} characters`);
    return null;
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > LIMITS[name]) {
    throw invalid(
      name,
      `${name} must be a string of 1 to ${LIMITS[name]} characters, got ${describe(value)}`,
    );
  }
  return value;
}

function invalid(field: string, message: string): NotificationError {
  return new NotificationError('INVALID_NOTIFICATION', field, message);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : `a ${typeof value}`;
}
