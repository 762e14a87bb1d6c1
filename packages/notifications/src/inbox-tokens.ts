import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Recipient tokens for the inbox: what a browser sends in place of the API key to read one
 * recipient's inbox. A token is the HMAC-SHA-256 of the recipient id under `INBOX_SECRET`, in
 * base64url (43 characters), issued by the host app's backend to its signed-in user. It opens
 * that recipient's inbox and nothing else: no other recipient's, no other route.
 */
export class InboxTokens {
  constructor(private readonly secret: Buffer | string) {}

  /** The token of `recipient`'s inbox. */
  issue(recipient: string): string {
    return this.mac(recipient).toString('base64url');
  }

  /** Whether `token` is the token of `recipient`, compared in constant time. */
  verify(recipient: string, token: string): boolean {
    if (!INBOX_TOKEN.test(token)) return false;
    const given = Buffer.from(token, 'base64url');
    const expected = this.mac(recipient);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private mac(recipient: string): Buffer {
    return createHmac('sha256', this.secret).update(recipient).digest();
  }
}

/** What a token looks like: 32 bytes in base64url without padding. */
export const INBOX_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The shortest `INBOX_SECRET` taken, in characters. */
export const MIN_INBOX_SECRET_LENGTH = 32;
