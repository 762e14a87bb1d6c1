import { InvalidOptionError } from '../options-check.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite/index.js';
import type { Store } from './store.js';

/** Opens the store a URL names: `memory:`, `sqlite:PATH` (relative to the working directory). */
export function openStore(url: string): Store {
  if (url === 'memory:') return new MemoryStore();
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '')
      throw new InvalidOptionError(
        'DATABASE_URL',
        'sqlite: needs a file path, e.g. sqlite:./data/offload.db',
      );
    return new SqliteStore({ path });
  }
  throw new InvalidOptionError(
    'DATABASE_URL',
    `${JSON.stringify(url)} is not a store URL; use memory:, sqlite:./data/offload.db or (soon) postgres://user@host/db`,
  );
}
