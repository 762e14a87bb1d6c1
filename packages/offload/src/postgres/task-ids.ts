import { OffloadError } from '../errors/offload-error.js';

/** Larger than any id: the cursor of the first page. */
export const NO_CURSOR = '9223372036854775807';
const CANONICAL_ID = /^[1-9][0-9]{0,18}$/;

/** Whether `id` is one this store could have handed out: a bigint in canonical decimal form. */
export function isTaskId(id: string): boolean {
  return typeof id === 'string' && CANONICAL_ID.test(id) && (id.length < 19 || id <= NO_CURSOR);
}

/** Ids come from this store; anything else would be a bug upstream, not user input. */
export function checkId(id: string): string {
  if (!isTaskId(id)) throw new TypeError(`not a task id of this store: ${id}`);
  return id;
}

export function parseCursor(cursor: string): string {
  if (!isTaskId(cursor)) {
    throw new OffloadError(
      'INVALID_CURSOR',
      `the cursor ${JSON.stringify(cursor)} is not one this store hands out: pass the nextCursor of the previous page`,
    );
  }
  return cursor;
}
