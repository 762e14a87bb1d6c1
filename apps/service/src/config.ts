import { createHmac } from 'node:crypto';
import { InvalidOptionError, SECOND } from 'offload';
import { secondsVariable, wholeNumberVariable } from '@offload/notifications';
import {
  describeChannels,
  readChannelSettings,
  type ChannelSettings,
} from '@offload/notifications';
import { parseStoreUrl, redactUrl } from 'offload';
import { defaultMaxConnections, MIN_SPARE_FILES, openFileLimit } from './connections.js';
import { inboxConfig, type InboxConfig } from './inbox-config.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The service's settings, read from the environment once at start (see DESIGN.md). */
export interface ServiceConfig {
  /** `PORT`, default 8000; 0 picks a free port. */
  port: number;
  /** `HOST`, default 0.0.0.0. */
  host: string;
  /** `DATABASE_URL`: `memory:`, `sqlite:PATH` (default `sqlite:./data/offload.db`) or `postgres://…`. */
  databaseUrl: string;
  /** `DATABASE_SCHEMA` (PostgreSQL, default `offload`): the schema of Offload's tables. */
  databaseSchema: string;
  /** `DATABASE_POOL_SIZE` (PostgreSQL, default 10): connections this process keeps at most. */
  databasePoolSize: number;
  /** `REQUEST_TIMEOUT` (seconds, default 60): the default timeout of a task, in ms. */
  taskTimeout: number;
  /** `SHUTDOWN_GRACE` (seconds, default 25): how long running tasks may finish on stop, in ms. */
  shutdownGrace: number;
  /** `CONCURRENCY`: tasks run at once; undefined lets the runtime choose. */
  concurrency: number | undefined;
  /** `NOTIFY_DEMO_DELAY_MS` (default 2000): how long the demo notification works, in ms. */
  notifyDemoDelay: number;
  /** `OFFLOAD_API_KEY`: when set, `/api/*` and `/metrics` need `Authorization: Bearer <key>`. */
  apiKey: string | undefined;
  /** `METRICS_PUBLIC` (`true` or `false`, default false): leave `/metrics` open with an API key. */
  metricsPublic: boolean;
  /** `DASHBOARD_READ_ONLY` (`true` or `false`, default false): a dashboard without actions. */
  dashboardReadOnly?: boolean;
  /** `LOG_LEVEL`, default info. */
  logLevel: LogLevel;
  /**
   * `LOG_FORMAT`: `json` (one JSON object a line) or `pretty` (human-readable lines). Undefined
   * (the default): pretty when stdout is a terminal, JSON otherwise.
   */
  logFormat?: LogFormat | undefined;
  /**
   * `MAX_CONNECTIONS`: client connections held at once; those over it are closed as they come.
   * Default: the open-file limit (`ulimit -n`) less a fifth of it (at least 128, at most half)
   * kept for the store, logs and outgoing calls; 1000 where the limit cannot be read.
   */
  maxConnections: number;
  /** The delivery channels: `WEBHOOK_SECRET`, `SMTP_URL`, `VAPID_*` and friends (see settings.ts). */
  channels: ChannelSettings;
  /**
   * `NOTIFICATION_TOPICS`: the topics notifications and recipients' preferences may name, comma
   * separated (e.g. `billing,security,product-news`); default none.
   */
  topics: string[];
  /** `PUBLIC_URL`: where the service is reached from outside (for unsubscribe links); unset: none. */
  publicUrl?: string | undefined;
  /**
   * The key unsubscribe links are signed with: `UNSUBSCRIBE_SECRET`, or derived from
   * `OFFLOAD_API_KEY` when that is unset. Undefined: emails carry no unsubscribe link.
   */
  unsubscribeSecret?: Buffer | undefined;
  /** The inbox: `INBOX_SECRET` and the limits of its streams (see inbox-config.ts); default. */
  inbox?: Partial<InboxConfig>;
}

export const DEFAULT_DATABASE_URL = 'sqlite:./data/offload.db';

/** The longest duration a timer takes: about 24.8 days. */
const MAX_MS = 2 ** 31 - 1;
export const MIN_API_KEY_LENGTH = 16;

/**
 * Reads and checks the configuration. Throws an `InvalidOptionError` naming the first variable
 * with a bad value and saying what it accepts. An empty variable counts as unset, except
 * `OFFLOAD_API_KEY`, where an empty key is refused rather than taken to mean "no auth".
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  { fileLimit = openFileLimit() }: { fileLimit?: number | undefined } = {},
): ServiceConfig {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const apiKey = env.OFFLOAD_API_KEY;
  if (apiKey !== undefined && (apiKey.length < MIN_API_KEY_LENGTH || /\s/.test(apiKey))) {
    throw new InvalidOptionError(
      'OFFLOAD_API_KEY',
      `must be at least ${MIN_API_KEY_LENGTH} characters without spaces (e.g. from \`openssl rand -hex 32\`), or unset to leave /api/* open`,
    );
  }
  const level = read('LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidOptionError(
      'LOG_LEVEL',
      `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`,
    );
  }
  const logFormat = read('LOG_FORMAT');
  if (logFormat !== undefined && !(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new InvalidOptionError(
      'LOG_FORMAT',
      `must be json or pretty, or unset for pretty lines on a terminal and JSON otherwise; got ${JSON.stringify(logFormat)}`,
    );
  }
  const concurrency = read('CONCURRENCY');
  const databaseUrl = read('DATABASE_URL') ?? DEFAULT_DATABASE_URL;
  // Its form is checked now, with the other variables; what only opening can tell (a directory
  // given as the file, a server that is down) is told when the store opens.
  parseStoreUrl(databaseUrl);
  return {
    port: wholeNumberVariable('PORT', read('PORT') ?? '8000', 0, 65_535),
    host: read('HOST') ?? '0.0.0.0',
    databaseUrl,
    databaseSchema: schemaName(read('DATABASE_SCHEMA') ?? 'offload'),
    databasePoolSize: wholeNumberVariable(
      'DATABASE_POOL_SIZE',
      read('DATABASE_POOL_SIZE') ?? '10',
      1,
      1000,
    ),
    taskTimeout: secondsVariable(
      'REQUEST_TIMEOUT',
      read('REQUEST_TIMEOUT') ?? '60',
      0.001,
      MAX_MS / SECOND,
    ),
    shutdownGrace: secondsVariable(
      'SHUTDOWN_GRACE',
      read('SHUTDOWN_GRACE') ?? '25',
      0,
      MAX_MS / SECOND,
    ),
    concurrency:
      concurrency === undefined
        ? undefined
        : wholeNumberVariable('CONCURRENCY', concurrency, 1, 10_000),
    notifyDemoDelay: wholeNumberVariable(
      'NOTIFY_DEMO_DELAY_MS',
      read('NOTIFY_DEMO_DELAY_MS') ?? '2000',
      0,
      MAX_MS,
    ),
    apiKey,
    metricsPublic: booleanVariable('METRICS_PUBLIC', read('METRICS_PUBLIC') ?? 'false'),
    dashboardReadOnly: booleanVariable(
      'DASHBOARD_READ_ONLY',
      read('DASHBOARD_READ_ONLY') ?? 'false',
    ),
    logLevel: level as LogLevel,
    logFormat: logFormat as LogFormat | undefined,
    maxConnections: maxConnections(read('MAX_CONNECTIONS'), fileLimit),
    channels: readChannelSettings(read),
    topics: topicList(read('NOTIFICATION_TOPICS')),
    publicUrl: publicUrl(read('PUBLIC_URL')),
    unsubscribeSecret: unsubscribeSecret(read('UNSUBSCRIBE_SECRET'), apiKey),
    inbox: inboxConfig(read),
  };
}

/** A topic: lower-case letters, digits, `_`, `.` and `-`, starting with a letter or digit. */
export const TOPIC = /^[a-z0-9][a-z0-9_.-]{0,49}$/;
export const MIN_UNSUBSCRIBE_SECRET_LENGTH = 32;

function topicList(text: string | undefined): string[] {
  if (text === undefined) return [];
  const topics = text.split(/[\s,]+/).filter((topic) => topic !== '');
  const bad = topics.find((topic) => !TOPIC.test(topic));
  if (bad !== undefined) {
    throw new InvalidOptionError(
      'NOTIFICATION_TOPICS',
      `must be topic names separated by commas, each 1 to 50 of a-z, 0-9, "_", "." and "-", got ${JSON.stringify(bad.slice(0, 60))}`,
    );
  }
  return [...new Set(topics)];
}

function publicUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new InvalidOptionError(
      'PUBLIC_URL',
      `must be the http:// or https:// URL the service is reached at from outside, without query or credentials, e.g. https://notify.example.com; got ${JSON.stringify(text.slice(0, 100))}`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * `UNSUBSCRIBE_SECRET`, at least 32 characters; unset, a key derived from `OFFLOAD_API_KEY` (so
 * that a service with an API key signs links without one more secret); neither: undefined.
 */
function unsubscribeSecret(
  text: string | undefined,
  apiKey: string | undefined,
): Buffer | undefined {
  if (text !== undefined) {
    if (text.length < MIN_UNSUBSCRIBE_SECRET_LENGTH || /\s/.test(text)) {
      throw new InvalidOptionError(
        'UNSUBSCRIBE_SECRET',
        `must be at least ${MIN_UNSUBSCRIBE_SECRET_LENGTH} characters without spaces (e.g. from \`openssl rand -hex 32\`), or unset to derive it from OFFLOAD_API_KEY`,
      );
    }
    return Buffer.from(text);
  }
  if (apiKey === undefined) return undefined;
  return createHmac('sha256', apiKey).update('offload unsubscribe links').digest();
}

/** `MAX_CONNECTIONS`, which must leave MIN_SPARE_FILES of the open-file limit to the process. */
function maxConnections(text: string | undefined, fileLimit: number | undefined): number {
  if (text === undefined) return defaultMaxConnections(fileLimit);
  const value = wholeNumberVariable('MAX_CONNECTIONS', text, 1, 1_000_000);
  const most = fileLimit === undefined ? undefined : Math.max(1, fileLimit - MIN_SPARE_FILES);
  if (most !== undefined && value > most) {
    throw new InvalidOptionError(
      'MAX_CONNECTIONS',
      `must be at most ${most}, got ${value}: this process may open ${fileLimit} files (ulimit -n) and needs ${MIN_SPARE_FILES} of them besides connections; raise the limit or leave MAX_CONNECTIONS unset to derive it from the limit`,
    );
  }
  return value;
}

function booleanVariable(name: string, text: string): boolean {
  if (text !== 'true' && text !== 'false') {
    throw new InvalidOptionError(name, `must be true or false, got ${JSON.stringify(text)}`);
  }
  return text === 'true';
}

function schemaName(text: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(text)) {
    throw new InvalidOptionError(
      'DATABASE_SCHEMA',
      `must be 1 to 63 lower-case letters, digits or "_", starting with a letter or "_", got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

/**
 * The configuration as it may be logged: the API key, channel secrets and the database password
 * are never shown.
 */
export function describeConfig({
  apiKey,
  channels,
  unsubscribeSecret,
  inbox,
  ...config
}: ServiceConfig): Record<string, unknown> {
  return {
    ...config,
    inbox: inbox && { ...inbox, secret: inbox.secret === undefined ? 'off' : 'set' },
    unsubscribeLinks:
      unsubscribeSecret !== undefined && config.publicUrl !== undefined ? 'on' : 'off',
    databaseUrl: redactUrl(config.databaseUrl),
    auth: apiKey === undefined ? 'off' : 'bearer',
    channels: describeChannels(channels),
  };
}
