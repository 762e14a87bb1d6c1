import { DAY, HOUR, MINUTE, SECOND } from 'offload';

/**
 * `"digest": {"key": "builds", "window": "1h"}` on a notify request: every notification to the
 * same recipient with the same key, from the first until the window has passed, is sent as one
 * delivery when the window closes (see digests.ts). `template` names a stored template rendered
 * with the list of events; without it, a plain list is sent.
 */
export interface DigestRequest {
  key: string;
  /** In ms. */
  window: number;
  template: string | null;
}

export const DIGEST_KEY = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$/;
export const MIN_DIGEST_WINDOW = SECOND;
export const MAX_DIGEST_WINDOW = 7 * DAY;
const UNITS: Record<string, number> = { s: SECOND, m: MINUTE, h: HOUR, d: DAY };
const WINDOW = /^(\d{1,7})(s|m|h|d)$/;
const EXAMPLE = '{"key": "builds", "window": "1h"}';

/** Reads `digest`: the request, or the field to fix and what is wrong with it. */
export function readDigest(
  value: unknown,
): { digest: DigestRequest | null } | { field: string; problem: string } {
  if (value === undefined || value === null) return { digest: null };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { field: 'digest', problem: `digest must be an object such as ${EXAMPLE}` };
  }
  const fields = value as Record<string, unknown>;
  const extra = Object.keys(fields).find((key) => !['key', 'window', 'template'].includes(key));
  if (extra !== undefined) {
    return {
      field: `digest.${extra}`,
      problem: `digest takes key, window and template (optional), such as ${EXAMPLE}`,
    };
  }
  const { key, window, template = null } = fields;
  if (typeof key !== 'string' || !DIGEST_KEY.test(key)) {
    return {
      field: 'digest.key',
      problem: `digest.key must be 1 to 100 of A-Z, a-z, 0-9, "_", ".", ":", "@" and "-", starting with a letter or digit, such as "builds"`,
    };
  }
  const match = typeof window === 'string' ? WINDOW.exec(window) : null;
  const ms = match ? Number(match[1]) * UNITS[match[2]!]! : Number.NaN;
  if (!(ms >= MIN_DIGEST_WINDOW && ms <= MAX_DIGEST_WINDOW)) {
    const got = typeof window === 'string' ? JSON.stringify(window.slice(0, 20)) : typeof window;
    return {
      field: 'digest.window',
      problem: `digest.window must be a duration from 1s to 7d, a whole number and a unit (s, m, h or d) such as "30m" or "1h", got ${got}`,
    };
  }
  if (template !== null && (typeof template !== 'string' || template.length === 0)) {
    return {
      field: 'digest.template',
      problem: 'digest.template must be the name of a stored template, rendered with the events',
    };
  }
  return { digest: { key, window: ms, template: template as string | null } };
}
