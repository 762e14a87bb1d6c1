import { OffloadError } from './offload-error.js';
import { StoreUnavailableError } from './store-unavailable.js';

/**
 * Thrown when the tasks of a request could not be stored: the store failed (`STORE_UNAVAILABLE`)
 * or the runtime is stopping (`RUNTIME_STOPPED`). Its `statusCode` is 503, so Fastify's default
 * error handler answers 503 and no false "ok" is sent. `cause` is the original error.
 */
export class BackgroundCommitError extends OffloadError {
  readonly statusCode = 503;

  constructor(cause: unknown) {
    const stopped = cause instanceof OffloadError && cause.code === 'RUNTIME_STOPPED';
    super(
      stopped ? 'RUNTIME_STOPPED' : 'STORE_UNAVAILABLE',
      stopped
        ? 'the service is shutting down and takes no new tasks; try again in a moment'
        : `the task store could not take the task, so nothing was scheduled; try again later (${describe(cause)})${hint(cause)}`,
      { cause },
    );
  }
}

/** What an operator should check, when the store says. */
function hint(error: unknown): string {
  return error instanceof StoreUnavailableError ? `; ${error.hint}` : '';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
