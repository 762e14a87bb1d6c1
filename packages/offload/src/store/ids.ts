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

/**
 * The smallest text above every text that starts with `prefix`, in code point order (the order of
 * SQLite's BINARY and PostgreSQL's "C" collations): `key >= prefix AND key < end` then selects the
 * keys with that prefix from an index. Null when no such text exists (a prefix of U+10FFFF only).
 */
export function prefixEnd(prefix: string): string | null {
  const points = [...prefix];
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last === 0x10ffff) continue;
    // The surrogates are not characters: after U+D7FF comes U+E000.
    points.push(String.fromCodePoint(last === 0xd7ff ? 0xe000 : last + 1));
    return points.join('');
  }
  return null;
}
