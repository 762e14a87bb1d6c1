import { InvalidOptionError } from '../options-check.js';
import type { Logger } from '../types.js';
import { MemoryStore } from './memory.js';
import { PostgresStore } from './postgres/index.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './store.js';

/** Options of `openStore` that only some stores use. */
export interface OpenStoreOptions {
  /** PostgreSQL: the schema of Offload's tables; default `offload`. */
  schema?: string;
  /** PostgreSQL: connections kept open at most; default 10. */
  poolSize?: number;
  /** Where trouble that does not fail a call is reported (PostgreSQL: connection trouble). */
  logger?: Logger;
}

/**
 * Opens the store a URL names: `memory:`, `sqlite:PATH` (relative to the working directory) or
 * `postgres://user:password@host:port/database` (`postgresql://` too).
 */
export function openStore(url: string, options: OpenStoreOptions = {}): Store {
  if (url === 'memory:') return new MemoryStore();
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '')
      throw new InvalidOptionError(
        'DATABASE_URL',
        'sqlite: needs a file path, e.g. sqlite:./data/offload.db',
      );
    return new SqliteStore({ path, logger: options.logger });
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidOptionError(
        'DATABASE_URL',
        'is not a valid postgres:// URL; e.g. postgres://user:password@localhost:5432/app (percent-encode special characters in the password)',
      );
    }
    if (parsed.pathname.length <= 1) {
      throw new InvalidOptionError(
        'DATABASE_URL',
        'names no database: add it after the host, e.g. postgres://user@localhost:5432/app',
      );
    }
    return new PostgresStore({ connectionString: url, ...options });
  }
  throw new InvalidOptionError(
    'DATABASE_URL',
    `${JSON.stringify(redactUrl(url))} is not a store URL; use memory:, sqlite:./data/offload.db or postgres://user@host:5432/db`,
  );
}

/** A URL as it may be shown: without its password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}
