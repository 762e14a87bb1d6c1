import { InvalidOptionError, SECOND } from 'offload';
import {
  MIN_INBOX_SECRET_LENGTH,
  secondsVariable,
  wholeNumberVariable,
} from '@offload/notifications';
import { DEFAULT_INBOX_STREAM_SETTINGS, type InboxStreamSettings } from './inbox-streams.js';

/** The inbox's settings, from the environment. */
export interface InboxConfig extends InboxStreamSettings {
  /**
   * `INBOX_SECRET`: the key recipient tokens are the HMAC under, at least 32 characters; unset,
   * the inbox takes the API key only.
   */
  secret?: string | undefined;
}

/**
 * Reads `INBOX_SECRET`, `INBOX_HEARTBEAT` (seconds, default 15), `INBOX_MAX_STREAMS` (default
 * 10000) and `INBOX_MAX_STREAMS_PER_RECIPIENT` (default 10), naming the first bad one.
 */
export function inboxConfig(read: (name: string) => string | undefined): InboxConfig {
  const secret = read('INBOX_SECRET');
  if (secret !== undefined && (secret.length < MIN_INBOX_SECRET_LENGTH || /\s/.test(secret))) {
    throw new InvalidOptionError(
      'INBOX_SECRET',
      `must be at least ${MIN_INBOX_SECRET_LENGTH} characters without spaces (e.g. from \`openssl rand -hex 32\`), or unset to take no recipient tokens`,
    );
  }
  const defaults = DEFAULT_INBOX_STREAM_SETTINGS;
  return {
    secret,
    heartbeat: secondsVariable(
      'INBOX_HEARTBEAT',
      read('INBOX_HEARTBEAT') ?? String(defaults.heartbeat / SECOND),
      0.01,
      3600,
    ),
    maxStreams: wholeNumberVariable(
      'INBOX_MAX_STREAMS',
      read('INBOX_MAX_STREAMS') ?? String(defaults.maxStreams),
      0,
      1_000_000,
    ),
    maxStreamsPerRecipient: wholeNumberVariable(
      'INBOX_MAX_STREAMS_PER_RECIPIENT',
      read('INBOX_MAX_STREAMS_PER_RECIPIENT') ?? String(defaults.maxStreamsPerRecipient),
      1,
      1000,
    ),
  };
}
