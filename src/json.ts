import { OffloadError } from './errors/offload-error.js';
import type { Json } from './types.js';

/** A payload that would not come back unchanged from JSON. */
export class InvalidPayloadError extends OffloadError {
  /** Where in the payload the problem is, e.g. `payload.user.createdAt`. */
  readonly path: string;
  /** What is wrong there, e.g. `is Infinity, which JSON turns into null`. */
  readonly problem: string;

  constructor(path: string, problem: string) {
    super(
      'INVALID_PAYLOAD',
      `${path} ${problem}: a task ${/^\w+/.exec(path)?.[0] ?? 'payload'} must be JSON (null, booleans, finite numbers, strings, arrays and plain objects)`,
    );
    this.path = path;
    this.problem = problem;
  }
}

/** How deep a payload may nest. */
export const MAX_JSON_DEPTH = 64;

/**
 * Encodes a task payload, refusing anything that would not survive `JSON.stringify` and
 * `JSON.parse` unchanged: a task must see exactly what was enqueued.
 */
export function encodePayload(payload: unknown): string {
  return encodeJson(payload, 'payload');
}

/**
 * Encodes a value that must come back unchanged from JSON; `path` names it in errors. `depth` is
 * how deep inside a payload the value will sit (0: it is the payload).
 */
export function encodeJson(value: unknown, path: string, depth = 0): string {
  if (!isJson(value, depth)) explain(value, path, depth, new Set());
  return JSON.stringify(value);
}

/**
 * Whether `value` comes back unchanged from JSON: the check every payload takes, so it builds no
 * paths and keeps no set of the objects seen (a cycle ends at the depth limit). `explain` then
 * says what and where.
 */
function isJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || !isJson(value[i], depth + 1)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(value).length > 0) return false;
  for (const key of Object.keys(value)) {
    if (!isJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** Throws the InvalidPayloadError that says why `value` (which `isJson` refused) is not JSON. */
function explain(value: unknown, path: string, depth: number, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value))
        throw new InvalidPayloadError(path, `is ${value}, which JSON turns into null`);
      return;
    case 'undefined':
      throw new InvalidPayloadError(path, 'is undefined, which JSON drops');
    case 'bigint':
      throw new InvalidPayloadError(path, 'is a BigInt; send it as a string');
    case 'function':
    case 'symbol':
      throw new InvalidPayloadError(path, `is a ${typeof value}`);
  }
  if (value === null) return;
  const object = value as object;
  if (depth >= MAX_JSON_DEPTH)
    throw new InvalidPayloadError(path, `is nested deeper than ${MAX_JSON_DEPTH} levels`);
  if (seen.has(object)) throw new InvalidPayloadError(path, 'refers back to itself (a cycle)');
  seen.add(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      if (!(i in object))
        throw new InvalidPayloadError(`${path}[${i}]`, 'is a hole in a sparse array');
      explain(object[i], `${path}[${i}]`, depth + 1, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (object.constructor as { name?: string } | undefined)?.name ?? 'class instance';
      const hint = object instanceof Date ? '; send date.toISOString()' : '';
      throw new InvalidPayloadError(path, `is a ${kind}, not a plain object${hint}`);
    }
    if (Object.getOwnPropertySymbols(object).length > 0) {
      throw new InvalidPayloadError(path, 'has symbol keys, which JSON drops');
    }
    for (const key of Object.keys(object)) {
      explain((object as Record<string, unknown>)[key], `${path}.${key}`, depth + 1, seen);
    }
  }
  seen.delete(object);
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
 * Reads a stored task result. Text that is not JSON (a row written by hand) is returned as it is,
 * rather than lost or thrown.
 */
export function decodeResult(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}
