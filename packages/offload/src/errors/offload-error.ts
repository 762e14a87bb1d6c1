/** Base class of the errors Offload throws itself; `code` is stable and machine-readable. */
export class OffloadError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
