export { OffloadError } from './offload-error.js';
export { RetryLaterError, type RetryLaterOptions } from './retry-later.js';
export { PermanentError } from './permanent.js';
export { TaskTimeoutError } from './task-timeout.js';
export { TaskAbortedError, type AbortReason } from './task-aborted.js';
export { InvalidOptionError } from './invalid-option.js';
export { InvalidPayloadError } from './invalid-payload.js';
export { BackgroundCommitError } from './background-commit.js';
export {
  StoreUnavailableError,
  type StoreUnavailableOptions,
  type StoreUnavailableReason,
} from './store-unavailable.js';
