import { InvalidOptionError } from '../options-check.js';
import type { NewRecord, RecordQuery, StoredRecord } from './store.js';

/** A collection: lower-case letters, digits, `_`, `.` and `-`, starting with a letter. */
const COLLECTION = /^[a-z][a-z0-9_.-]{0,99}$/;
/** The longest record id, in characters. */
export const MAX_RECORD_ID = 500;

/**
 * Throws unless `collection` and `id` may name a record: a collection of 1 to 100 of
 * `a-z0-9_.-` starting with a letter, an id of 1 to 500 characters without NUL (which PostgreSQL
 * text cannot hold). Every store checks them the same way.
 */
export function checkRecordKey(collection: string, id: string): void {
  if (typeof collection !== 'string' || !COLLECTION.test(collection)) {
    throw new InvalidOptionError(
      'record collection',
      `must be 1 to 100 of a-z, 0-9, "_", "." and "-", starting with a letter, got ${JSON.stringify(collection)}`,
    );
  }
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_RECORD_ID || id.includes('\0')) {
    throw new InvalidOptionError(
      'record id',
      `must be a string of 1 to ${MAX_RECORD_ID} characters without NUL, got ${JSON.stringify(String(id).slice(0, 100))}`,
    );
  }
}

/** Compares ids in code point order, as SQLite's BINARY and PostgreSQL's "C" collations do. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i]!.codePointAt(0)!;
    const y = right[i]!.codePointAt(0)!;
    if (x !== y) return x - y;
  }
  return left.length - right.length;
}

/**
 * The records of a memory store. Each call runs to its end without yielding: a put hands out
 * revisions one by one, as the durable stores' transactions do.
 */
export class MemoryRecords {
  private readonly collections = new Map<string, Map<string, StoredRecord>>();

  put({ collection, id, value }: NewRecord, now: number): StoredRecord {
    checkRecordKey(collection, id);
    let rows = this.collections.get(collection);
    if (!rows) this.collections.set(collection, (rows = new Map()));
    const stored = rows.get(id);
    const row: StoredRecord = {
      collection,
      id,
      value,
      revision: (stored?.revision ?? 0) + 1,
      createdAt: stored?.createdAt ?? now,
      updatedAt: now,
    };
    rows.set(id, row);
    return { ...row };
  }

  get(collection: string, ids: readonly string[]): StoredRecord[] {
    const rows = this.collections.get(collection);
    const found: StoredRecord[] = [];
    for (const id of ids) {
      const row = rows?.get(id);
      if (row) found.push({ ...row });
    }
    return found;
  }

  list(
    collection: string,
    { prefix, after, descending = false, limit }: RecordQuery,
  ): StoredRecord[] {
    const rows = this.collections.get(collection);
    if (!rows) return [];
    const sign = descending ? -1 : 1;
    return [...rows.values()]
      .filter(
        (row) =>
          (prefix === undefined || row.id.startsWith(prefix)) &&
          (after === undefined || sign * compareIds(row.id, after) > 0),
      )
      .sort((a, b) => sign * compareIds(a.id, b.id))
      .slice(0, limit)
      .map((row) => ({ ...row }));
  }

  delete(collection: string, id: string): boolean {
    return this.collections.get(collection)?.delete(id) ?? false;
  }
}
