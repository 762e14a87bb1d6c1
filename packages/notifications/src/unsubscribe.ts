import { createHmac, timingSafeEqual } from 'node:crypto';
import { DAY } from 'offload';
import { NotificationError } from './notification.js';

/**
 * One-click unsubscribe (RFC 8058). Every email sent to a stored recipient for a topic carries
 * `List-Unsubscribe: <PUBLIC_URL/unsubscribe?token=…>` and `List-Unsubscribe-Post:
 * List-Unsubscribe=One-Click`. The token names the recipient and the topic and when it expires,
 * signed with HMAC-SHA-256 under the service's secret: it is the only credential a POST to that
 * URL needs, and a token changed by one character, or past its time, is refused.
 */
export interface UnsubscribeSettings {
  /** The HMAC key. */
  secret: Buffer;
  /** Where the service is reached from outside, e.g. `https://notify.example.com` (`PUBLIC_URL`). */
  publicUrl: string;
  /** How long a link works after the email is sent, in ms; default 90 days. */
  lifetime?: number;
}

export const DEFAULT_LINK_LIFETIME = 90 * DAY;
/** The path of the unsubscribe endpoint, under PUBLIC_URL. */
export const UNSUBSCRIBE_PATH = '/unsubscribe';
/** Bytes of the HMAC kept in a token. */
const MAC_BYTES = 16;

export interface UnsubscribeRequest {
  recipient: string;
  topic: string;
}

export class UnsubscribeLinks {
  private readonly lifetime: number;
  private readonly base: string;

  constructor(private readonly settings: UnsubscribeSettings) {
    this.lifetime = settings.lifetime ?? DEFAULT_LINK_LIFETIME;
    this.base = settings.publicUrl.replace(/\/+$/, '');
  }

  /** The link of an email to `recipient` about `topic`, sent at `now` (epoch ms). */
  link(recipient: string, topic: string, now: number): string {
    return `${this.base}${UNSUBSCRIBE_PATH}?token=${this.token(recipient, topic, now)}`;
  }

  token(recipient: string, topic: string, now: number): string {
    const expires = Math.ceil((now + this.lifetime) / 1000);
    const payload = Buffer.from(`${recipient}\n${topic}\n${expires}`).toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /** What a token asks for; a NotificationError (400) when it is tampered with or expired. */
  verify(token: unknown, now: number): UnsubscribeRequest {
    const refused = (why: string) =>
      new NotificationError('INVALID_UNSUBSCRIBE_TOKEN', 'token', `this unsubscribe link ${why}`);
    if (typeof token !== 'string' || token.length > 1000) throw refused('has no valid token');
    const [payload, mac, ...rest] = token.split('.');
    if (payload === undefined || mac === undefined || rest.length > 0) {
      throw refused('has no valid token');
    }
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw refused('is not one this service signed (it was changed or cut short)');
    }
    const [recipient, topic, expires] = Buffer.from(payload, 'base64url').toString().split('\n');
    if (recipient === undefined || topic === undefined || expires === undefined) {
      throw refused('has no valid token');
    }
    if (Number(expires) * 1000 < now) {
      throw refused(
        `expired on ${new Date(Number(expires) * 1000).toISOString()}; use the link of a newer email, or change your preferences where you manage them`,
      );
    }
    return { recipient, topic };
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.settings.secret)
      .update(`unsubscribe\0${payload}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
