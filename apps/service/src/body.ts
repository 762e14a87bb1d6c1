import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SECOND } from 'offload';
import { ApiError, compressedBodyError } from './errors.js';

/** Charset labels of UTF-8 (`utf8` is the WHATWG Encoding Standard's alias), in lower case. */
const UTF_8 = ['utf-8', 'utf8'];
/** A `charset` parameter of a Content-Type, quoted or not. */
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/gi;
/**
 * How much of a body the service does not take it still reads and drops after answering, and
 * for how long, before it closes the connection (see `dropUnreadBodies`).
 */
export const DROP_BYTES = 16 * 1024 * 1024;
export const DROP_TIME = 5 * SECOND;

/**
 * Bodies are JSON or nothing: other content types get a 415. An empty JSON body counts as no
 * body, like a request without one, so `curl -X POST -H 'content-type: application/json'` works.
 *
 * A body is read as bytes and checked before it is decoded, once: decoding would turn each byte
 * that is not UTF-8 into U+FFFD, and the service would store text the client never sent. The
 * checks run here, where a body is read, so that requests without one (most) pay nothing for them.
 */
export function acceptJsonOnly(app: FastifyInstance): void {
  dropUnreadBodies(app);
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
    if (raw.length === 0) return done(null, undefined);
    const body = raw as Buffer; // parseAs: 'buffer'
    const refusal = refusedBody(request.headers, body);
    if (refusal !== undefined) return done(refusal, undefined);
    const text = body.toString('utf8');
    void parseJson(request, text, (error, value) => {
      done(error === null ? null : explainRefusal(error, text), value);
    });
  });
}

/**
 * A request refused before its body was read in full (413 BODY_TOO_LARGE, or a 401, 405 or 415
 * answered before the body is read) has the rest of its body read and dropped, up to DROP_BYTES
 * and for up to DROP_TIME; past either, the connection is closed.
 *
 * Fastify answers a body over the limit with `Connection: close`, and Node then closes the
 * connection as soon as the answer is written, with the body still arriving. Closing a socket
 * with unread bytes makes the kernel send a reset, which can reach the client before it reads
 * the answer: Node's `fetch` (undici) then reports EPIPE or UND_ERR_SOCKET instead of the 413,
 * while curl, which reads as it sends, shows the 413. Reading the rest lets every client finish
 * sending and read the answer, and the connection stays usable (the body's framing is intact).
 * The bounds keep a client from making the service read without end: Node alone would read the
 * unread body of a 401 until the request timeout.
 */
function dropUnreadBodies(app: FastifyInstance): void {
  app.addHook('onError', (request, reply, error, done) => {
    const raw = request.raw;
    if ((error as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      reply.removeHeader('connection');
    }
    // Not for `app.inject`, whose requests have no socket.
    if (!raw.complete && raw.socket instanceof Socket) dropRest(raw, raw.socket);
    done();
  });
}

/** Reads and drops the rest of `request`'s body; closes `socket` past DROP_BYTES or DROP_TIME. */
function dropRest(request: IncomingMessage, socket: Socket): void {
  let dropped = 0;
  const close = () => socket.destroy();
  const timer = setTimeout(close, DROP_TIME);
  const onData = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DROP_BYTES) close();
  };
  const stop = () => {
    clearTimeout(timer);
    request.off('data', onData);
  };
  request.on('data', onData);
  request.once('end', stop);
  socket.once('close', stop);
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
