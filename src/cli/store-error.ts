import { OffloadError } from '../index.js';

/**
 * A store that could not be opened, its message prefixed with the setting its URL came from
 * (`DATABASE_URL`, `--database`), which the store cannot know and the operator has to change.
 * Other errors are returned as they are.
 */
export function namingSource(error: unknown, source: string): unknown {
  if (!(error instanceof OffloadError) || error.code !== 'STORE_OPEN_FAILED') return error;
  return new OffloadError(error.code, `${source}: ${error.message}`, { cause: error });
}
