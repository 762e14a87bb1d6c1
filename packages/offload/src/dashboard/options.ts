import { randomBytes } from 'node:crypto';
import type { Runtime } from '../runtime/runtime.js';
import { InvalidOptionError, rejectUnknownKeys } from '../options-check.js';
import { HOUR, SECOND, systemClock, type Clock } from '../time.js';
import type { Logger } from '../types.js';
import type { DeliverySource } from './notifications-page.js';

export interface DashboardOptions {
  /** The runtime whose tasks, schedules and paused names the dashboard shows and steers. */
  runtime: Runtime;
  /**
   * `{ apiKey }`: the dashboard asks for this key on its login page and keeps a signed session
   * cookie. `false`: no login of its own, for a dashboard mounted behind the host app's own
   * authentication (or on a private network). Required, so that an open dashboard is a choice.
   */
  login: { apiKey: string } | false;
  /** The path it is mounted at, without a trailing slash. Default `/dashboard`. */
  basePath?: string;
  /** Show no action and refuse every POST but login and logout. Default false. */
  readOnly?: boolean;
  /**
   * Signs session cookies and CSRF tokens (HMAC-SHA256). Default: random per process, so
   * sessions end with the process; give the same secret to every process behind one address.
   */
  secret?: string | Buffer;
  /** How long a login lasts, in ms. Default 12 hours. */
  sessionLifetime?: number;
  /** Mark the session cookie `Secure` (served over HTTPS only). Default false. */
  secureCookie?: boolean;
  /** How long the task counts are reused, in ms (see StatsCache). Default 1 s. */
  statsTtl?: number;
  /** How often live pages are told what changed, in ms. Default 1 s. */
  liveInterval?: number;
  /** The notifications page's source; without one there is no such page. */
  notifications?: DeliverySource;
  /** Where the time is read. Default the system's. */
  clock?: Clock;
  /** Where a failure to read the store is reported. */
  logger?: Logger;
}

export interface DashboardSettings {
  runtime: Runtime;
  apiKey: string | null;
  basePath: string;
  readOnly: boolean;
  secret: string | Buffer;
  sessionLifetime: number;
  secureCookie: boolean;
  statsTtl: number;
  liveInterval: number;
  notifications: DeliverySource | null;
  clock: Clock;
  logger: Logger | null;
}

const KEYS = [
  'runtime',
  'login',
  'basePath',
  'readOnly',
  'secret',
  'sessionLifetime',
  'secureCookie',
  'statsTtl',
  'liveInterval',
  'notifications',
  'clock',
  'logger',
];

/** Checks the options once, with an error naming the field. */
export function dashboardSettings(options: DashboardOptions): DashboardSettings {
  rejectUnknownKeys('dashboard options', options, KEYS);
  const { runtime, login } = options;
  if (!runtime || typeof runtime.list !== 'function') {
    throw new InvalidOptionError(
      'dashboard options.runtime',
      'must be a runtime made by createRuntime()',
    );
  }
  if (
    login !== false &&
    (typeof login !== 'object' ||
      login === null ||
      typeof login.apiKey !== 'string' ||
      login.apiKey.length === 0)
  ) {
    throw new InvalidOptionError(
      'dashboard options.login',
      'must be { apiKey: "<key>" } for a login page, or false when the host app authenticates',
    );
  }
  const basePath = options.basePath ?? '/dashboard';
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath)) {
    throw new InvalidOptionError(
      'dashboard options.basePath',
      `must be a path such as /dashboard or /admin/tasks, without a trailing slash, got ${JSON.stringify(basePath)}`,
    );
  }
  const positive = (field: string, value: number | undefined, fallback: number) => {
    if (value === undefined) return fallback;
    if (!Number.isFinite(value) || value <= 0) {
      throw new InvalidOptionError(
        `dashboard options.${field}`,
        `must be a positive number of ms, got ${String(value)}`,
      );
    }
    return value;
  };
  return {
    runtime,
    apiKey: login === false ? null : login.apiKey,
    basePath,
    readOnly: options.readOnly ?? false,
    secret: options.secret ?? randomBytes(32),
    sessionLifetime: positive('sessionLifetime', options.sessionLifetime, 12 * HOUR),
    secureCookie: options.secureCookie ?? false,
    statsTtl: positive('statsTtl', options.statsTtl, SECOND),
    liveInterval: positive('liveInterval', options.liveInterval, SECOND),
    notifications: options.notifications ?? null,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? null,
  };
}
