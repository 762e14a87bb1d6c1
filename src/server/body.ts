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
    parseJson(request, body.toString('utf8'), done);
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
