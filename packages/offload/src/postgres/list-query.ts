import { prefixEnd } from '../store/ids.js';
import type { ListFilter } from '../types.js';
import type { Sql } from './sql.js';
import { NO_CURSOR, parseCursor } from './task-ids.js';

/** The statement of one page of `list` and its parameters; it reads one row more than `limit`. */
export function listQuery(
  sql: Sql,
  { state, name, keyPrefix, limit, cursor }: ListFilter & { limit: number },
): [query: string, parameters: unknown[]] {
  const below = cursor === undefined ? NO_CURSOR : parseCursor(cursor);
  const page = [below, name ?? null, limit + 1];
  if (keyPrefix !== undefined) {
    const end = prefixEnd(keyPrefix);
    const query = end === null ? sql.listByKeyUnbounded : sql.listByKey;
    return [query, [...page, keyPrefix, end, state ?? null]];
  }
  if (state === undefined) return [sql.list, page];
  if (state === 'queued' || state === 'running') {
    return [state === 'queued' ? sql.listQueued : sql.listRunning, page];
  }
  return [sql.listFinished, [...page, state]];
}
