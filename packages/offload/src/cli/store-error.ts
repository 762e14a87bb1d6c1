import { OffloadError } from '../index.js';

/** The codes of a store that could not be opened (`STORE_NOT_FOUND`: with `mustExist`). */
const STORE_CODES = ['STORE_OPEN_FAILED', 'STORE_NOT_FOUND'];

/**
 * A store that could not be opened, its message prefixed with the setting its URL came from
 * (`DATABASE_URL`, `--database`), which the store cannot know and the operator has to change.
 * Other errors are returned as they are.
 */
export function namingSource(error: unknown, source: string): unknown {
  if (!(error instanceof OffloadError) || !STORE_CODES.includes(error.code)) return error;
  return new OffloadError(error.code, `${source}: ${error.message}`, { cause: error });
}
