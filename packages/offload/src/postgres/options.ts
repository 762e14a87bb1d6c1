import type pg from 'pg';
import {
  describe,
  durationOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import type { Logger } from '../types.js';
import { NAME_PATTERN, quoteIdentifier } from './migrations.js';

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`, as node-postgres takes it. */
  connectionString: string;
  /** The schema that holds Offload's tables; created when missing. Default `offload`. */
  schema?: string;
  /**
   * Open an existing store only: `open()` fails with `STORE_NOT_FOUND` instead of creating a
   * missing schema, for tools that read or change tasks and must not make an empty store of a
   * mistyped schema name. A schema that exists is still brought up to date. Default false.
   */
  mustExist?: boolean;
  /**
   * Connections this process keeps open at most; default 10. A runner uses about three at once
   * (claim, settle, maintenance); HTTP requests that enqueue share them, as their writes are
   * grouped per event-loop turn. Keep the sum over all processes below the server's
   * `max_connections`.
   */
  poolSize?: number;
  /** How long to wait for a connection before a call fails, in ms; default 5000. */
  connectTimeout?: number;
  /** Where connection trouble is reported. Default: nowhere (the calls that fail still throw). */
  logger?: Logger;
}

const DEFAULT_SCHEMA = 'offload';
const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT = 5000;

const silent: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silent,
};

/** What a store works with, from its options, each checked once. */
export interface PostgresSettings {
  schema: string;
  /** Advisory locks of this schema use this first key: migrations, maintenance, liveness. */
  lockClass: number;
  /** The LISTEN/NOTIFY channel of this schema, quoted. */
  channel: string;
  poolConfig: pg.PoolConfig;
  mustExist: boolean;
  logger: Logger;
}

/** Checks `options`, naming a bad one, and fills in the defaults. */
export function postgresSettings(options: PostgresStoreOptions): PostgresSettings {
  rejectUnknownKeys('postgresStore options', options, [
    'connectionString',
    'schema',
    'mustExist',
    'poolSize',
    'connectTimeout',
    'logger',
  ]);
  if (
    typeof options.connectionString !== 'string' ||
    !/^postgres(ql)?:\/\//.test(options.connectionString)
  ) {
    throw new InvalidOptionError(
      'postgresStore.connectionString',
      'must be a postgres:// URL, e.g. postgres://user@localhost:5432/app',
    );
  }
  const schema = options.schema ?? DEFAULT_SCHEMA;
  if (typeof schema !== 'string' || !NAME_PATTERN.test(schema)) {
    throw new InvalidOptionError(
      'postgresStore.schema',
      `must be 1 to 63 lower-case letters, digits or "_", starting with a letter or "_", got ${JSON.stringify(schema)}`,
    );
  }
  const poolConfig: pg.PoolConfig = {
    connectionString: options.connectionString,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    application_name: 'offload',
  };
  if (!Number.isInteger(poolConfig.max) || poolConfig.max! < 1) {
    throw new InvalidOptionError(
      'postgresStore.poolSize',
      `must be a whole number of connections >= 1, got ${describe(options.poolSize)}`,
    );
  }
  durationOption('postgresStore.connectTimeout', poolConfig.connectionTimeoutMillis);
  return {
    schema,
    lockClass: lockClassOf(schema),
    channel: quoteIdentifier(`offload_${schema}`),
    poolConfig,
    mustExist: options.mustExist ?? false,
    logger: options.logger ?? silent,
  };
}

/** A stable 32-bit number for the schema: the first key of its advisory locks. */
export function lockClassOf(schema: string): number {
  let hash = 0x811c9dc5; // FNV-1a
  for (const char of `offload:${schema}`) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}
