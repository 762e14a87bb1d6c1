/** Recorded on a task whose attempt ran past its timeout; its signal was aborted with this error. */
export class TaskTimeoutError extends Error {
  readonly timeout: number;

  constructor(timeout: number, options?: ErrorOptions) {
    super(`the attempt ran longer than its timeout of ${timeout} ms and was aborted`, options);
    this.name = 'TaskTimeoutError';
    this.timeout = timeout;
  }
}
