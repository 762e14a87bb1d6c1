import { OffloadError } from './offload-error.js';

/** An option or setting with a bad value; the message names it and says what is accepted. */
export class InvalidOptionError extends OffloadError {
  readonly option: string;

  constructor(option: string, message: string) {
    super('INVALID_OPTION', `${option}: ${message}`);
    this.option = option;
  }
}
