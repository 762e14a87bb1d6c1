import { OffloadError } from '../errors/offload-error.js';

const CANONICAL = /^[1-9][0-9]{0,15}$/;

/**
 * The row number behind a task id of the memory and SQLite stores, or null when `id` is not one
 * they hand out. Only the canonical decimal form counts: `"1e3"`, `"0x10"` or `"01"` name no task.
 */
export function parseRowId(id: string): number | null {
  if (typeof id !== 'string' || !CANONICAL.test(id)) return null;
  const value = Number(id);
  return Number.isSafeInteger(value) ? value : null;
}

/** A list cursor of the memory and SQLite stores: the id of the last task of the previous page. */
export function parseCursor(cursor: string): number {
  const value = parseRowId(cursor);
  if (value === null) {
    throw new OffloadError(
      'INVALID_CURSOR',
      `the cursor ${JSON.stringify(cursor)} is not one this store hands out: pass the nextCursor of the previous page`,
    );
  }
  return value;
}
