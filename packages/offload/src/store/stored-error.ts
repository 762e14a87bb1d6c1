import { isInstance } from '../errors/is-instance.js';
import type { TaskError } from '../types.js';
import { MAX_MESSAGE_LENGTH, MAX_STACK_LENGTH } from './store.js';

/** Error names are cut to this many characters before they are stored. */
const MAX_NAME_LENGTH = 200;
/** A thrown value that is not an Error is quoted in its message up to this many characters. */
const MAX_QUOTED_LENGTH = 1000;

/** What a thrown value says of itself, as a TaskError records it. */
export type ThrownDescription = Pick<TaskError, 'name' | 'message' | 'stack'>;

/**
 * The name, message and stack of anything thrown, an Error or not, bounded and in text that every
 * store can hold. Never throws, whatever was thrown: a revoked Proxy, getters or a `toString` that
 * throw, a cycle. What cannot be read is described by what can (its type, at least).
 */
export function describeThrown(thrown: unknown): ThrownDescription {
  if (isInstance(thrown, Error)) {
    const stack = readOr(() => thrown.stack, undefined);
    return {
      name: storable(
        readOr(() => String(thrown.name || 'Error'), 'Error'),
        MAX_NAME_LENGTH,
      ),
      message: storable(
        readOr(() => String(thrown.message), 'an Error whose message could not be read'),
        MAX_MESSAGE_LENGTH,
      ),
      stack: typeof stack === 'string' ? storable(stack, MAX_STACK_LENGTH) : null,
    };
  }
  const text =
    readOr(
      () => (typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown))),
      null,
    ) ?? readOr(() => Object.prototype.toString.call(thrown), `[${typeof thrown}]`);
  return {
    name: 'NonErrorThrown',
    message: storable(
      `a non-Error value was thrown: ${text.slice(0, MAX_QUOTED_LENGTH)}`,
      MAX_MESSAGE_LENGTH,
    ),
    stack: null,
  };
}

/** Records anything thrown as the error of attempt `attempt` at `at` (epoch ms). Never throws. */
export function toTaskError(thrown: unknown, attempt: number, at: number): TaskError {
  return { attempt, at: new Date(at), ...describeThrown(thrown) };
}

/** What `read` returns, or `fallback` when it throws. */
function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/**
 * `text` cut to `max` UTF-16 units, as every store can hold it: a NUL (which PostgreSQL's text
 * and jsonb refuse) and an unpaired surrogate (which jsonb refuses and SQLite mangles, and which
 * a cut can leave of a pair) become U+FFFD. One unstorable error must not fail the write of
 * every outcome settled with it.
 */
function storable(text: string, max: number): string {
  return text.slice(0, max).toWellFormed().replaceAll('\0', '\uFFFD');
}

/** A task error as the durable stores keep it: as `TaskError`, with `at` in epoch milliseconds. */
interface StoredError {
  attempt: number;
  at: number;
  name: string;
  message: string;
  stack: string | null;
}

/** The JSON text of one error, as appended to a task's stored errors. */
export function encodeError(error: TaskError): string {
  const stored: StoredError = {
    attempt: error.attempt,
    at: error.at.getTime(),
    name: error.name,
    message: error.message,
    stack: error.stack,
  };
  return JSON.stringify(stored);
}

/** Reads stored errors, parsed; anything but an array (a row written by hand) reads as none. */
export function decodeErrors(stored: unknown): TaskError[] {
  if (!Array.isArray(stored)) return [];
  return (stored as StoredError[]).map((e) => ({
    attempt: e.attempt,
    at: new Date(e.at),
    name: e.name,
    message: e.message,
    stack: e.stack,
  }));
}

/** Reads stored errors from JSON text; text that is not JSON reads as no errors. */
export function parseErrors(text: string): TaskError[] {
  if (text === '[]') return [];
  try {
    return decodeErrors(JSON.parse(text));
  } catch {
    return [];
  }
}
