import { isIP } from 'node:net';
import type { ChannelName, PushSubscription, Recipient } from './delivery.js';
import { envelopeAddress } from './channels/email.js';
import { isP256PublicKey } from './channels/web-push-crypto.js';
import type { HostPolicy } from './net/host-policy.js';

/** A recipient id, as `RECIPIENT_ID` (notification.ts) has it: the address of an inbox. */
const INBOX_RECIPIENT = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$/;

/** Most recipients one request may list. */
export const MAX_RECIPIENTS = 100;

/**
 * Checks one recipient for `channel`: returns it as it is stored, or a message saying what is
 * wrong with it (`field` is where it is, e.g. `to[2]`). Checked when the request arrives, so that
 * a malformed recipient is a 400, never a task that fails later.
 */
export function checkRecipient(
  channel: ChannelName,
  value: unknown,
  field: string,
  policy: HostPolicy,
): Checked<Recipient> {
  switch (channel) {
    case 'webhook':
      return checkWebhookUrl(value, field, policy);
    case 'email':
      return checkEmailAddress(value, field);
    case 'push':
      return checkPushSubscription(value, field, policy);
    case 'log':
      return typeof value === 'string' && value.length > 0 && !tooLong(value, 320)
        ? { value }
        : { problem: `${field} must be a string of 1 to 320 characters` };
    case 'inbox':
      return typeof value === 'string' && INBOX_RECIPIENT.test(value)
        ? { value }
        : {
            problem: `${field} must be the id of the recipient whose inbox keeps it: 1 to 100 of A-Z, a-z, 0-9, "_", ".", "@", ":" and "-", starting with a letter or digit`,
          };
  }
}

/** A checked value, or what is wrong with it. */
export type Checked<T> = { value: T; problem?: undefined } | { problem: string };

function checkWebhookUrl(value: unknown, field: string, policy: HostPolicy): Checked<string> {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) {
    return problem(
      `${field} must be the URL to POST to, a string of at most 2048 characters, e.g. "https://example.com/hooks/offload"`,
    );
  }
  const url = parseUrl(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    return problem(
      `${field} must be an http:// or https:// URL, got ${JSON.stringify(value.slice(0, 100))}`,
    );
  }
  const refused = checkTarget(url, field, policy);
  return refused === null ? { value: url.href } : problem(refused);
}

/** Problems every URL we POST to may have: credentials in it, or an address that is refused. */
function checkTarget(url: URL, field: string, policy: HostPolicy): string | null {
  if (url.username !== '' || url.password !== '') {
    return `${field} must not carry a user name or password: they would be stored with the task; webhooks are authenticated by their signature`;
  }
  if (url.hostname === '') return `${field} has no host`;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) !== 0 && !policy.allowsName(host)) {
    const refusal = policy.refusal(host);
    if (refusal !== null) {
      return `${field} is refused: ${refusal}; notifications go to public addresses only`;
    }
  }
  return null;
}

function checkEmailAddress(value: unknown, field: string): Checked<string> {
  if (typeof value !== 'string' || envelopeAddress(value) === null) {
    const got = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value;
    return problem(`${field} must be one email address such as "ada@example.com", got ${got}`);
  }
  return { value };
}

const SUBSCRIPTION_KEYS = ['endpoint', 'expirationTime', 'keys'];

function checkPushSubscription(
  value: unknown,
  field: string,
  policy: HostPolicy,
): Checked<PushSubscription> {
  const shape = `a push subscription as the browser's PushSubscription.toJSON() gives it: {"endpoint":"https://…","keys":{"p256dh":"…","auth":"…"}}`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return problem(`${field} must be ${shape}`);
  }
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !SUBSCRIPTION_KEYS.includes(key));
  if (unknown !== undefined) return problem(`${field}.${unknown} is not a field of ${shape}`);
  const { endpoint, keys } = fields;
  const url = typeof endpoint === 'string' && endpoint.length <= 2048 ? parseUrl(endpoint) : null;
  if (!url) return problem(`${field}.endpoint must be the push service URL of ${shape}`);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.lists(url.hostname))) {
    return problem(
      `${field}.endpoint must be an https:// URL (plain http only to a host on ALLOW_PRIVATE_HOSTS)`,
    );
  }
  const refused = checkTarget(url, `${field}.endpoint`, policy);
  if (refused !== null) return problem(refused);
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
    return problem(
      `${field}.keys must be {"p256dh":"…","auth":"…"}, from the browser's subscription`,
    );
  }
  const { p256dh, auth, ...rest } = keys as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return problem(`${field}.keys has only p256dh and auth`);
  if (typeof p256dh !== 'string' || !isP256PublicKey(base64url(p256dh))) {
    return problem(
      `${field}.keys.p256dh must be the subscription's public key: the base64url of a 65-byte P-256 point`,
    );
  }
  if (typeof auth !== 'string' || base64url(auth).length !== 16) {
    return problem(
      `${field}.keys.auth must be the subscription's auth secret: the base64url of 16 bytes`,
    );
  }
  if (fields.expirationTime !== undefined && fields.expirationTime !== null) {
    if (typeof fields.expirationTime !== 'number')
      return problem(`${field}.expirationTime must be a number or null`);
  }
  return { value: { endpoint: url.href, keys: { p256dh, auth } } };
}

/** A scheme, `//` and the first character of a host, with no space, control or backslash anywhere. */
const WRITTEN_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s\\/?#@][^\s\\\p{Cc}]*$/u;

/**
 * `text` as a URL, or null. The URL parser repairs what it can: it reads backslashes as slashes,
 * drops tabs and newlines, and looks for the host past any number of slashes, so `https:///x`
 * becomes `https://x/`. A recipient is called as it was given, so a URL the parser would have to
 * repair is refused instead.
 */
function parseUrl(text: string): URL | null {
  if (!WRITTEN_URL.test(text)) return null;
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/** Whether `text` has more than `limit` characters; counts them only when `length` is over. */
export function tooLong(text: string, limit: number): boolean {
  return text.length > limit && characters(text) > limit;
}

/**
 * The characters of `text` as a person counts them: an emoji is one, where `length` counts its two
 * UTF-16 units. A string's iterator steps by code point.
 */
export function characters(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

function base64url(text: string): Buffer {
  return /^[A-Za-z0-9_-]+={0,2}$/.test(text) ? Buffer.from(text, 'base64url') : Buffer.alloc(0);
}

function problem(message: string): { problem: string } {
  return { problem: message };
}
