import { OffloadError } from './offload-error.js';

/**
 * A payload that would not come back unchanged from JSON or that does not match its task's schema,
 * or a progress report that is not JSON or too large.
 */
export class InvalidPayloadError extends OffloadError {
  /** Where in the payload the problem is, e.g. `payload.user.createdAt`. */
  readonly path: string;
  /** What is wrong there, e.g. `is Infinity, which JSON turns into null`. */
  readonly problem: string;

  /** `message` replaces the default one, which says that the value must be JSON. */
  constructor(path: string, problem: string, message?: string) {
    super(
      'INVALID_PAYLOAD',
      message ??
        `${path} ${problem}: a task ${/^\w+/.exec(path)?.[0] ?? 'payload'} must be JSON (null, booleans, finite numbers, strings, arrays and plain objects)`,
    );
    this.path = path;
    this.problem = problem;
  }
}
