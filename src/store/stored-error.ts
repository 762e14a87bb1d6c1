import type { TaskError } from '../types.js';

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
