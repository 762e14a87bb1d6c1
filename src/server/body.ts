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

/**
 * What Fastify's JSON parser refused in `text`. Its parser (secure-json-parse, with
 * `protoAction` and `constructorAction` 'error') refuses a `__proto__` key, and a `constructor`
 * key holding a `prototype` key, anywhere in a body: they could change the prototype of objects
 * that a later merge or copy makes. It throws the same SyntaxError as for text that is not JSON,
 * and Fastify answers "not valid JSON", which misleads for valid JSON. So a refused body is parsed
 * again, plainly (`JSON.parse` makes `__proto__` an own key, never a prototype): when that
 * succeeds, such a key was the reason. This runs only for refused bodies.
 */
function explainRefusal(error: Error, text: string): Error {
  try {
    JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return error;
  }
  return new ApiError(
    'INVALID_JSON',
    'the body has a "__proto__" key, or a "constructor" key holding a "prototype" key, which are refused because they can change the prototype of objects; rename the key',
    { cause: error },
  );
}
