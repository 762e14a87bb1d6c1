import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ApiError, compressedBodyError } from './errors.js';

/** Charset labels of UTF-8 (`utf8` is the WHATWG Encoding Standard's alias), in lower case. */
const UTF_8 = ['utf-8', 'utf8'];
/** A `charset` parameter of a Content-Type, quoted or not. */
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/gi;

/**
 * Bodies are JSON or nothing: other content types get a 415. An empty JSON body counts as no
 * body, like a request without one, so `curl -X POST -H 'content-type: application/json'` works.
 *
 * A body is read as bytes and checked before it is decoded, once: decoding would turn each byte
 * that is not UTF-8 into U+FFFD, and the service would store text the client never sent. The
 * checks run here, where a body is read, so that requests without one (most) pay nothing for them.
 */
export function acceptJsonOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
    if (raw.length === 0) return done(null, undefined);
    const body = raw as Buffer; // parseAs: 'buffer'
    const refusal = refusedBody(request.headers, body);
    if (refusal !== undefined) return done(refusal, undefined);
    const text = body.toString('utf8');
    parseJson(request, text, (error, value) => {
      done(error === null ? null : explainRefusal(error, text), value);
    });
  });
}

/** Why a JSON body cannot be read as it is, or undefined when it can. */
function refusedBody(headers: IncomingHttpHeaders, body: Buffer): ApiError | undefined {
  // First: compressed bytes are not the JSON's text, and a declared charset is that text's.
  const compressed = compressedBodyError(headers['content-encoding']);
  if (compressed !== undefined) return compressed;
  const charset = otherCharset(headers['content-type']);
  if (charset !== undefined) {
    return new ApiError(
      'UNSUPPORTED_MEDIA_TYPE',
      `the body is declared as charset=${charset}, which the service does not read; send it as UTF-8, with Content-Type: application/json`,
    );
  }
  // A UTF-8 byte-order mark is valid UTF-8; the JSON parser skips it.
  if (!isUtf8(body)) {
    return new ApiError(
      'INVALID_JSON',
      'the body is not valid UTF-8; send the JSON encoded as UTF-8 (a text in another charset must be converted first)',
    );
  }
  return undefined;
}

/** The first charset a Content-Type declares that is not UTF-8, or undefined. */
function otherCharset(contentType: string | undefined): string | undefined {
  // Most clients send no parameters at all.
  if (contentType === undefined || !contentType.includes(';')) return undefined;
  for (const [, quoted, token] of contentType.matchAll(CHARSET)) {
    const charset = quoted ?? token ?? '';
    if (!UTF_8.includes(charset.toLowerCase())) return charset;
  }
  return undefined;
}

/** How many keys of a refused key's path its message shows, at most: the last ones. */
const PATH_SHOWN = 8;

/**
 * What Fastify's JSON parser refused in `text`. Its parser (secure-json-parse, with
 * `protoAction` and `constructorAction` 'error') refuses a `__proto__` key, and a `constructor`
 * key holding a `prototype` key, anywhere in a body: they could change the prototype of objects
 * that a later merge or copy makes. It throws the same SyntaxError for both, and Fastify answers
 * any SyntaxError with FST_ERR_CTP_INVALID_JSON_BODY, "not valid JSON", which misleads for valid
 * JSON. So a refusal is parsed again, plainly (`JSON.parse` makes `__proto__` an own key, never
 * a prototype): when that succeeds, such a key was the reason, and the message names it. This
 * runs only for refused bodies.
 */
function explainRefusal(error: Error, text: string): Error {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return error;
  }
  const found = poisonedKey(value);
  if (found === undefined) return error;
  const what =
    found.key === '__proto__'
      ? 'a "__proto__" key'
      : 'a "constructor" key holding a "prototype" key';
  return new ApiError(
    'INVALID_JSON',
    `the body has ${what} (at ${found.path}), which is refused because it can change the prototype of objects; rename the key`,
    { cause: error },
  );
}

/** A key walked into on the way to a refused one; `parent` is undefined at the top. */
interface Step {
  value: object;
  key: string | number;
  parent: Step | undefined;
}

/**
 * The first `__proto__` key, or `constructor` key holding a `prototype` key, that secure-json-parse
 * refuses, breadth first as it looks, with its path (e.g. `data.a.__proto__`). Iterative: a body
 * may nest as deep as its size allows.
 */
function poisonedKey(root: unknown): { key: string; path: string } | undefined {
  if (root === null || typeof root !== 'object') return undefined;
  let level: Step[] = [{ value: root, key: '', parent: undefined }];
  while (level.length > 0) {
    const next: Step[] = [];
    for (const step of level) {
      const node = step.value as Record<string, unknown>;
      if (Object.hasOwn(node, '__proto__')) {
        return { key: '__proto__', path: pathOf(step, ['__proto__']) };
      }
      const constructor = Object.hasOwn(node, 'constructor') ? node.constructor : undefined;
      if (
        constructor !== null &&
        typeof constructor === 'object' &&
        Object.hasOwn(constructor, 'prototype')
      ) {
        return { key: 'constructor', path: pathOf(step, ['constructor', 'prototype']) };
      }
      for (const [key, value] of Object.entries(node)) {
        if (value !== null && typeof value === 'object') {
          next.push({ value, key: Array.isArray(node) ? Number(key) : key, parent: step });
        }
      }
    }
    level = next;
  }
  return undefined;
}

/** The path of `keys` below `step`, as JavaScript would write it, its start cut when long. */
function pathOf(step: Step, keys: string[]): string {
  const parts: (string | number)[] = [...keys].reverse();
  let cut = false;
  for (let at: Step | undefined = step; at?.parent !== undefined; at = at.parent) {
    if (parts.length === PATH_SHOWN) {
      cut = true;
      break;
    }
    parts.push(at.key);
  }
  const path = parts
    .reverse()
    .map((key) =>
      typeof key === 'number'
        ? `[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(key)
          ? `.${key}`
          : `[${JSON.stringify(key)}]`,
    )
    .join('');
  return cut ? `…${path}` : path.replace(/^\./, '');
}
