import { InvalidOptionError } from 'offload';
import { SECOND } from 'offload';

/** A whole number from `min` to `max`, read from the environment variable `name`. */
export function wholeNumberVariable(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** A number of seconds (decimals allowed) read from the variable `name`, returned in ms. */
export function secondsVariable(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `must be a number of seconds from ${min} to ${Math.floor(max)}, got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(value * SECOND);
}
