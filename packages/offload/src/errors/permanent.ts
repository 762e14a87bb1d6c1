/** Thrown by a task whose failure will not go away by trying again: it fails at once, without retry. */
export class PermanentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentError';
  }
}
