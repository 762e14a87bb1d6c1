import { InvalidPayloadError } from './errors/invalid-payload.js';
import type { Json } from './types.js';

/** How deep a payload may nest. */
export const MAX_JSON_DEPTH = 64;
/**
 * The most characters of JSON one progress report may take: progress is written while the task
 * runs, and read with every task shown, so it is a summary (`{ done: 40, total: 100 }`), not data.
 */
export const MAX_PROGRESS_LENGTH = 16 * 1024;

/**
 * Encodes a task payload, refusing anything that would not survive `JSON.stringify` and
 * `JSON.parse` unchanged: a task must see exactly what was enqueued.
 */
export function encodePayload(payload: unknown): string {
  return encodeJson(payload, 'payload');
}

/** Encodes what a task reports with `ctx.progress`: JSON, at most MAX_PROGRESS_LENGTH long. */
export function encodeProgress(progress: unknown): string {
  const text = encodeJson(progress, 'progress');
  if (text.length > MAX_PROGRESS_LENGTH) {
    const problem = `is ${text.length} characters of JSON`;
    throw new InvalidPayloadError(
      'progress',
      problem,
      `progress ${problem}, and a task's progress may take at most ${MAX_PROGRESS_LENGTH}: report a summary, such as { done: 40, total: 100 }, and return the data`,
    );
  }
  return text;
}

/**
 * Encodes a value that must come back unchanged from JSON; `path` names it in errors. `depth` is
 * how deep inside a payload the value will sit (0: it is the payload).
 */
export function encodeJson(value: unknown, path: string, depth = 0): string {
  const problem = findProblem(value, depth, []);
  if (problem !== null) throw new InvalidPayloadError(`${path}${problem.at}`, problem.what);
  return JSON.stringify(value);
}

/** What is wrong (`what`) and where below the value walked (`at`, e.g. `.user.tags[2]`). */
interface Problem {
  at: string;
  what: string;
}

const here = (what: string): Problem => ({ at: '', what });

/**
 * What keeps `value` from coming back unchanged from JSON, or null. The path is built only on the
 * way back from a problem, so a good payload costs no strings. `ancestors` are the objects being
 * walked into, to tell a cycle.
 */
function findProblem(value: unknown, depth: number, ancestors: object[]): Problem | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : here(`is ${value}, which JSON turns into null`);
    case 'undefined':
      return here('is undefined, which JSON drops');
    case 'bigint':
      return here('is a BigInt; send it as a string');
    case 'function':
    case 'symbol':
      return here(`is a ${typeof value}`);
  }
  if (value === null) return null;
  const object = value as object;
  if (depth >= MAX_JSON_DEPTH) return here(`is nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (ancestors.includes(object)) return here('refers back to itself (a cycle)');
  ancestors.push(object);
  const problem = Array.isArray(object)
    ? findInArray(object, depth, ancestors)
    : findInObject(object, depth, ancestors);
  ancestors.pop();
  return problem;
}

function findInArray(array: unknown[], depth: number, ancestors: object[]): Problem | null {
  for (let i = 0; i < array.length; i++) {
    if (!(i in array)) return { at: `[${i}]`, what: 'is a hole in a sparse array' };
    const problem = findProblem(array[i], depth + 1, ancestors);
    if (problem !== null) return { at: `[${i}]${problem.at}`, what: problem.what };
  }
  return null;
}

function findInObject(object: object, depth: number, ancestors: object[]): Problem | null {
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = (object.constructor as { name?: string } | undefined)?.name ?? 'class instance';
    const hint = object instanceof Date ? '; send date.toISOString()' : '';
    return here(`is a ${kind}, not a plain object${hint}`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) {
    return here('has symbol keys, which JSON drops');
  }
  for (const key of Object.keys(object)) {
    const problem = findProblem((object as Record<string, unknown>)[key], depth + 1, ancestors);
    if (problem !== null) return { at: `.${key}${problem.at}`, what: problem.what };
  }
  return null;
}

/** Reads a stored payload; a row written by hand may hold text that is not JSON. */
export function decodePayload(text: string): { payload: unknown; error: string | null } {
  try {
    return { payload: JSON.parse(text), error: null };
  } catch (error) {
    return {
      payload: null,
      error: `the stored payload is not valid JSON (${(error as Error).message})`,
    };
  }
}

/**
 * Reads a stored task result or progress. Text that is not JSON (a row written by hand) is returned as it is,
 * rather than lost or thrown.
 */
export function decodeResult(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}
