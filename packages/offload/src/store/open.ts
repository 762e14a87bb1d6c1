import { describe, InvalidOptionError, rejectUnknownKeys } from '../options-check.js';
import type { Logger } from '../types.js';
import { OffloadError } from '../errors/offload-error.js';
import { MemoryStore } from './memory.js';
import type { Store } from './store.js';

/** The URL of the embedded database that the service and the `offload` command default to. */
export const DEFAULT_DATABASE_URL = 'sqlite:./data/offload.db';

/** Options of `openStore` that only some stores use. */
export interface OpenStoreOptions {
  /** PostgreSQL: the schema of Offload's tables; default `offload`. */
  schema?: string;
  /** PostgreSQL: connections kept open at most; default 10. */
  poolSize?: number;
  /** Where trouble that does not fail a call is reported (PostgreSQL: connection trouble). */
  logger?: Logger;
  /**
   * SQLite and PostgreSQL: open an existing store only; `open()` fails with `STORE_NOT_FOUND`
   * instead of creating a missing file (and its directory) or schema. Default false.
   */
  mustExist?: boolean;
}

/** What a store URL names, read without opening anything. */
export type StoreUrl =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; connectionString: string };

const STORE_URLS = 'memory:, sqlite:./data/offload.db or postgres://user@host:5432/db';

/**
 * Reads a store URL: `memory:`, `sqlite:PATH` (relative to the working directory) or
 * `postgres://user:password@host:port/database` (`postgresql://` too). Throws an
 * `InvalidOptionError` naming `option`, where the URL came from, when it is not one of these.
 */
export function parseStoreUrl(url: string, option = 'DATABASE_URL'): StoreUrl {
  if (typeof url !== 'string') {
    throw new InvalidOptionError(
      option,
      `must be a store URL (${STORE_URLS}), got ${describe(url)}`,
    );
  }
  if (url === 'memory:') return { kind: 'memory' };
  if (url.startsWith('memory:')) {
    throw new InvalidOptionError(option, 'memory: takes nothing after the colon; write memory:');
  }
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '')
      throw new InvalidOptionError(
        option,
        'sqlite: needs a file path, e.g. sqlite:./data/offload.db',
      );
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidOptionError(
        option,
        'is not a valid postgres:// URL; e.g. postgres://user:password@localhost:5432/app (percent-encode special characters in the password)',
      );
    }
    if (parsed.pathname.length <= 1) {
      throw new InvalidOptionError(
        option,
        'names no database: add it after the host, e.g. postgres://user@localhost:5432/app',
      );
    }
    return { kind: 'postgres', connectionString: url };
  }
  throw new InvalidOptionError(
    option,
    `${JSON.stringify(redactUrl(url))} is not a store URL; use ${STORE_URLS}`,
  );
}

/**
 * Opens the store a URL names (see `parseStoreUrl`), loading only the driver it needs:
 * `better-sqlite3` for `sqlite:`, `pg` for `postgres://`. A driver that is not installed is an
 * `OffloadError` with code `DRIVER_NOT_INSTALLED` that gives the install command.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  rejectUnknownKeys('openStore options', options, ['schema', 'poolSize', 'logger', 'mustExist']);
  const parsed = parseStoreUrl(url, 'openStore url');
  switch (parsed.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite': {
      const { SqliteStore } = await loadDriver(
        'better-sqlite3',
        () => import('../sqlite/index.js'),
      );
      return new SqliteStore({
        path: parsed.path,
        logger: options.logger,
        mustExist: options.mustExist,
      });
    }
    case 'postgres': {
      const { PostgresStore } = await loadDriver('pg', () => import('../postgres/index.js'));
      return new PostgresStore({ connectionString: parsed.connectionString, ...options });
    }
  }
}

/** Imports a store's module, telling a missing driver from any other failure. */
async function loadDriver<T>(driver: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === 'ERR_MODULE_NOT_FOUND' && String(message).includes(`'${driver}'`)) {
      throw new OffloadError(
        'DRIVER_NOT_INSTALLED',
        `this store needs the ${driver} package, which is not installed: run npm install ${driver}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** A URL as it may be shown: without its password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}
