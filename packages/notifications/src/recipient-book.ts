import type { Store, StoredRecord } from 'offload';
import type { ChannelName, PushSubscription } from './delivery.js';
import { readDeliveryHours, type QuietHours, type SendWindow } from './delivery-hours.js';
import { NotificationError, RECIPIENT_ID, type RequestRules } from './notification.js';
import { checkRecipient } from './recipients.js';

/**
 * Stored recipients: the addresses of a user or a system (an email address, a webhook URL, push
 * subscriptions), its time zone, and the topics it turned off per channel. A notification to
 * recipients by id sends each on the channels it has and has not turned off for the topic.
 * Kept in the store's records; deleting a recipient deletes its addresses and preferences.
 */
export const RECIPIENTS = 'notification-recipients';

/** The channels a recipient may have. */
export const RECIPIENT_CHANNELS = ['email', 'webhook', 'push', 'inbox'] as const;
export type RecipientChannel = (typeof RECIPIENT_CHANNELS)[number];

/** Most push subscriptions one recipient keeps (browsers and devices). */
export const MAX_SUBSCRIPTIONS = 10;

/** What `PUT /api/recipients/:id` takes, checked. */
export interface RecipientProfile {
  email: string | null;
  webhook: string | null;
  push: PushSubscription[];
  /** Whether notifications to the recipient by id also go to its in-app inbox; absent on older records. */
  inbox?: boolean;
  /** An IANA time zone, e.g. `Europe/Berlin`. */
  timezone: string | null;
  /** When no delivery is sent, in `timezone` (see delivery-hours.ts); absent on older records. */
  quietHours?: QuietHours | null;
  /** When deliveries are sent, weekly, in `timezone`; absent on older records. */
  sendWindow?: SendWindow | null;
  /** Per topic, the channels turned off (`false`); a channel not named is on. */
  preferences: { [topic: string]: { [channel in RecipientChannel]?: boolean } };
}

export interface StoredRecipient extends RecipientProfile {
  id: string;
  createdAt: string;
  updatedAt: string;
}

const FIELDS = [
  'email',
  'webhook',
  'push',
  'inbox',
  'timezone',
  'quietHours',
  'sendWindow',
  'preferences',
];

export class RecipientBook {
  constructor(
    private readonly store: () => Promise<Store>,
    private readonly rules: RequestRules,
  ) {}

  /** Checks a PUT body: a 400 naming the field that is wrong. */
  check(body: unknown): RecipientProfile {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid(
        'body',
        'the body must be a JSON object such as {"email": "ada@example.com", "timezone": "Europe/Berlin", "preferences": {"billing": {"email": false}}}',
      );
    }
    const fields = body as Record<string, unknown>;
    const unknown = Object.keys(fields).find((key) => !FIELDS.includes(key));
    if (unknown !== undefined) {
      throw invalid(
        unknown,
        `${JSON.stringify(unknown)} is not a field of a recipient; use ${FIELDS.join(', ')}`,
      );
    }
    const address = (channel: ChannelName, value: unknown, field: string) => {
      const checked = checkRecipient(channel, value, field, this.rules.policy);
      if (checked.problem !== undefined) throw invalid(field, checked.problem);
      return checked.value;
    };
    const push = fields.push ?? [];
    if (!Array.isArray(push) || push.length > MAX_SUBSCRIPTIONS) {
      throw invalid(
        'push',
        `push must be a list of at most ${MAX_SUBSCRIPTIONS} push subscriptions`,
      );
    }
    const inbox = fields.inbox ?? false;
    if (typeof inbox !== 'boolean') {
      throw invalid(
        'inbox',
        'inbox must be true (notifications by id also go to the in-app inbox) or false',
      );
    }
    const timezone = readTimezone(fields.timezone);
    const hours = readDeliveryHours(fields, timezone);
    if ('problem' in hours) throw invalid(hours.field, hours.problem);
    return {
      email: fields.email == null ? null : (address('email', fields.email, 'email') as string),
      webhook:
        fields.webhook == null ? null : (address('webhook', fields.webhook, 'webhook') as string),
      push: push.map((p, i) => address('push', p, `push[${i}]`) as PushSubscription),
      inbox,
      timezone,
      ...hours.value,
      preferences: this.readPreferences(fields.preferences),
    };
  }

  async put(id: string, profile: RecipientProfile, now: Date): Promise<StoredRecipient> {
    checkId(id);
    const record = await (
      await this.store()
    ).putRecord({ collection: RECIPIENTS, id, value: JSON.stringify(profile) }, now.getTime());
    return toRecipient(record);
  }

  async get(id: string): Promise<StoredRecipient | null> {
    checkId(id);
    return (await this.find([id])).get(id) ?? null;
  }

  /** The stored recipients among `ids`, by id. */
  async find(ids: readonly string[]): Promise<Map<string, StoredRecipient>> {
    const records = await (await this.store()).getRecords(RECIPIENTS, ids);
    return new Map(records.map((record) => [record.id, toRecipient(record)]));
  }

  async delete(id: string): Promise<boolean> {
    checkId(id);
    return (await this.store()).deleteRecord(RECIPIENTS, id);
  }

  /** Turns email off for `topic`; false when the recipient is no longer stored. */
  async unsubscribe(id: string, topic: string, now: Date): Promise<boolean> {
    const stored = await this.get(id);
    if (stored === null) return false;
    const { id: _id, createdAt: _c, updatedAt: _u, ...profile } = stored;
    profile.preferences = {
      ...profile.preferences,
      [topic]: { ...profile.preferences[topic], email: false },
    };
    await this.put(id, profile, now);
    return true;
  }

  private readPreferences(value: unknown): RecipientProfile['preferences'] {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(
        'preferences',
        'preferences must be an object by topic, e.g. {"billing": {"email": false}}',
      );
    }
    const preferences: RecipientProfile['preferences'] = {};
    for (const [topic, channels] of Object.entries(value as Record<string, unknown>)) {
      if (!this.rules.topics.has(topic)) {
        const known = [...this.rules.topics];
        throw new NotificationError(
          'UNKNOWN_TOPIC',
          `preferences.${topic}`,
          `preferences names the topic ${JSON.stringify(topic.slice(0, 100))}, which is not declared; ${known.length === 0 ? 'this service declares no topics (set NOTIFICATION_TOPICS)' : `use one of: ${known.join(', ')}`}`,
        );
      }
      if (channels === null || typeof channels !== 'object' || Array.isArray(channels)) {
        throw invalid(
          `preferences.${topic}`,
          `preferences.${topic} must be an object such as {"email": false}`,
        );
      }
      const entry: { [channel in RecipientChannel]?: boolean } = {};
      for (const [channel, on] of Object.entries(channels as Record<string, unknown>)) {
        if (
          !(RECIPIENT_CHANNELS as readonly string[]).includes(channel) ||
          typeof on !== 'boolean'
        ) {
          throw invalid(
            `preferences.${topic}.${channel}`,
            `preferences.${topic} takes ${RECIPIENT_CHANNELS.join(', ')}, each true or false`,
          );
        }
        entry[channel as RecipientChannel] = on;
      }
      preferences[topic] = entry;
    }
    return preferences;
  }
}

/** The channels `recipient` has an address on, with each address (its inbox's is its id). */
export function addressesOf(
  recipient: StoredRecipient,
): { channel: RecipientChannel; to: string | PushSubscription }[] {
  return [
    ...(recipient.email === null ? [] : [{ channel: 'email' as const, to: recipient.email }]),
    ...(recipient.webhook === null ? [] : [{ channel: 'webhook' as const, to: recipient.webhook }]),
    ...recipient.push.map((to) => ({ channel: 'push' as const, to })),
    ...(recipient.inbox === true ? [{ channel: 'inbox' as const, to: recipient.id }] : []),
  ];
}

export function checkId(id: string): void {
  if (!RECIPIENT_ID.test(id)) {
    throw new NotificationError(
      'INVALID_RECIPIENT',
      'id',
      `${JSON.stringify(id.slice(0, 100))} is not a recipient id: use 1 to 100 of A-Z, a-z, 0-9, "_", ".", "@", ":" and "-", starting with a letter or digit`,
    );
  }
}

function readTimezone(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const bad = () =>
    invalid(
      'timezone',
      `timezone must be an IANA time zone such as "Europe/Berlin" or "UTC", got ${JSON.stringify(String(value).slice(0, 100))}`,
    );
  if (typeof value !== 'string' || value.length > 100) throw bad();
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    throw bad();
  }
}

function toRecipient(record: StoredRecord): StoredRecipient {
  const profile = JSON.parse(record.value) as RecipientProfile;
  return {
    id: record.id,
    ...profile,
    inbox: profile.inbox ?? false,
    createdAt: new Date(record.createdAt).toISOString(),
    updatedAt: new Date(record.updatedAt).toISOString(),
  };
}

function invalid(field: string, message: string): NotificationError {
  return new NotificationError('INVALID_RECIPIENT', field, message);
}
