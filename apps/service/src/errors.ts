import { maxHeaderSize, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { OffloadError, StoreUnavailableError } from 'offload';
import { StoreFaultLog, type StoreFaultLogOptions } from './store-fault-log.js';

/**
 * Every error code the HTTP API answers with, and its status. Clients and tests rely on the
 * codes; add one here, never answer with a code that is not listed.
 */
export const ERROR_CODES = {
  INVALID_JSON: 400,
  INVALID_NOTIFICATION: 400,
  UNKNOWN_CHANNEL: 400,
  CHANNEL_NOT_CONFIGURED: 400,
  INVALID_IDEMPOTENCY_KEY: 400,
  INVALID_NOTIFICATION_ID: 400,
  INVALID_QUERY: 400,
  INVALID_TASK_ID: 400,
  INVALID_TASK_NAME: 400,
  INVALID_CURSOR: 400,
  INVALID_SCHEDULE: 400,
  UNKNOWN_TOPIC: 400,
  UNKNOWN_TEMPLATE: 400,
  TEMPLATE_RENDER_FAILED: 400,
  INVALID_TEMPLATE: 400,
  INVALID_RECIPIENT: 400,
  INVALID_SUPPRESSION_ID: 400,
  INVALID_UNSUBSCRIBE_TOKEN: 400,
  INVALID_MESSAGE_ID: 400,
  INVALID_LAST_EVENT_ID: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  INVALID_INBOX_TOKEN: 401,
  INBOX_TOKEN_MISMATCH: 403,
  NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  NOTIFICATION_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  TEMPLATE_NOT_FOUND: 404,
  RECIPIENT_NOT_FOUND: 404,
  SUPPRESSION_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  TASK_NOT_CANCELABLE: 409,
  TASK_NOT_RETRYABLE: 409,
  EXPECTATION_FAILED: 417,
  BODY_TOO_LARGE: 413,
  URL_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  TOO_MANY_INBOX_STREAMS: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL_ERROR: 500,
  STORE_UNAVAILABLE: 503,
  RUNTIME_STOPPED: 503,
  INBOX_STREAMS_FULL: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The body of every error answer. */
export interface ErrorBody {
  ok: false;
  error: { code: ErrorCode; message: string };
}

/** An error the API answers with as it is: its code is in the catalogue. */
export class ApiError extends OffloadError {
  declare readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }

  get statusCode(): number {
    return ERROR_CODES[this.code];
  }
}

/** Fastify's own errors that are the client's doing, as catalogue codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'URL_TOO_LONG',
};

/** The largest request body the API reads, in bytes. */
export const BODY_LIMIT = 64 * 1024;

const FASTIFY_MESSAGES: Partial<Record<ErrorCode, string>> = {
  INVALID_JSON: 'the body is not valid JSON; send a JSON object, or no body at all',
  BODY_TOO_LARGE: `the body is larger than the limit of ${BODY_LIMIT} bytes; send a smaller notification`,
  UNSUPPORTED_MEDIA_TYPE: 'send the body as JSON with the header Content-Type: application/json',
  URL_TOO_LONG: 'a part of the URL is longer than 100 characters; no id is that long',
};

/** Messages for Fastify errors whose catalogue code is shared with others. */
const FASTIFY_ERROR_MESSAGES: Record<string, string> = {
  FST_ERR_BAD_URL:
    'the URL is not valid: a "%" must start a percent-encoded UTF-8 character such as %20 or %C3%A9',
};

/**
 * The 415 for a compressed body (a Content-Encoding other than `identity`), or undefined. The
 * service does not decode gzip or br: it would read the compressed bytes as the JSON.
 */
export function compressedBodyError(contentEncoding: string | undefined): ApiError | undefined {
  if (contentEncoding === undefined) return undefined;
  const codings = contentEncoding
    .toLowerCase()
    .split(',')
    .map((coding) => coding.trim())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length === 0) return undefined;
  return new ApiError(
    'UNSUPPORTED_MEDIA_TYPE',
    `the body must not be compressed (Content-Encoding: ${codings.join(', ')}); the service does not decode it: send the JSON uncompressed, with Content-Type: application/json`,
  );
}

/** Maps anything thrown while handling a request to one catalogue entry. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  // A store that cannot serve now says what to check; its driver's message is for the log.
  if (error instanceof StoreUnavailableError) {
    return new ApiError('STORE_UNAVAILABLE', `the task store cannot answer now: ${error.hint}`, {
      cause: error,
    });
  }
  if (error instanceof OffloadError && error.code in ERROR_CODES) {
    return new ApiError(error.code as ErrorCode, error.message, { cause: error });
  }
  const fastifyError = error as Partial<FastifyError>;
  const code = fastifyError.code !== undefined ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (code) {
    const message =
      FASTIFY_ERROR_MESSAGES[fastifyError.code!] ??
      FASTIFY_MESSAGES[code] ??
      fastifyError.message ??
      code;
    return new ApiError(code, message, { cause: error });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Another client error Fastify found (a malformed request): say what it said.
    return new ApiError(
      status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST',
      fastifyError.message ?? 'bad request',
      { cause: error },
    );
  }
  return new ApiError(
    'INTERNAL_ERROR',
    'an unexpected error happened; it was logged with this request id',
    { cause: error },
  );
}

export function errorBody(error: ApiError): ErrorBody {
  return { ok: false, error: { code: error.code, message: error.message } };
}

/**
 * Answers `error` with its catalogue entry. A 503 of a store that cannot serve is logged through
 * `faults`, which counts repeated ones instead of logging each.
 */
function sendError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  faults?: StoreFaultLog,
): FastifyReply {
  let apiError = toApiError(error);
  // A body of a type other than JSON is refused before it is read; when it is compressed too,
  // say so, as the JSON parser does (see body.ts): the client would meet that next.
  if (apiError.code === 'UNSUPPORTED_MEDIA_TYPE')
    apiError = compressedBodyError(request.headers['content-encoding']) ?? apiError;
  // Client errors show in the "request completed" line; server-side ones need their cause.
  const storeFault = apiError.code === 'STORE_UNAVAILABLE' && faults?.answered(request, error);
  if (apiError.statusCode >= 500 && !storeFault)
    request.log.error({ err: error }, `answered ${apiError.statusCode} ${apiError.code}`);
  if (apiError.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
  if (apiError.statusCode === 503) reply.header('retry-after', '5');
  return reply.code(apiError.statusCode).send(errorBody(apiError));
}

/**
 * For Fastify's `frameworkErrors` option: what the router refuses before any route or hook runs
 * (a malformed percent-encoding, a path segment over the length limit) gets the envelope too.
 */
export function sendFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  void sendError(error, request, reply);
}

/** An error of Node's HTTP parser: `rawPacket` is the chunk it was parsing. */
type ParserError = Error & { code?: string; rawPacket?: unknown };

/** Node's HTTP parser errors (see `clientErrorHandler`), as catalogue entries. */
function clientError(error: ParserError, requestTimeout: number, headerLimit: number): ApiError {
  const code = error.code ?? 'unknown';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ApiError(
      'REQUEST_TIMEOUT',
      `the request was not received in full within ${requestTimeout / 1000} s; send it at once`,
    );
  }
  if (code === 'HPE_HEADER_OVERFLOW' && urlOverflowed(error.rawPacket, headerLimit)) {
    return new ApiError(
      'URL_TOO_LONG',
      `the URL is too long: the URL and headers may take ${headerLimit} bytes together; send a shorter URL`,
    );
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new ApiError(
      'HEADERS_TOO_LARGE',
      'the request headers are too large; send fewer or shorter ones',
    );
  }
  return new ApiError(
    'BAD_REQUEST',
    `the request is not valid HTTP/1.1 (${code}); check the method, headers, Content-Length and chunked encoding`,
  );
}

/** The start of a request line: a method, a space, and the start of a target. */
const REQUEST_LINE = /^[A-Z]+ [^ \r\n]/;

/**
 * Whether a header overflow was the URL's doing. Node counts the URL toward its header limit, with
 * the header names and values, and reports both as HPE_HEADER_OVERFLOW, with the chunk it was
 * parsing as `rawPacket`.
 * When that chunk begins with the request line, the URL passed the limit if the line does not
 * end within the chunk, or ends only past the limit. A chunk from within a request that arrived
 * in pieces tells neither: that counts as headers, as before.
 */
function urlOverflowed(packet: unknown, limit: number): boolean {
  if (!Buffer.isBuffer(packet)) return false;
  let start = 0;
  // Empty lines before a request line are skipped (RFC 9112 2.2), as Node's parser does.
  while (packet[start] === 0x0d || packet[start] === 0x0a) start += 1;
  if (!REQUEST_LINE.test(packet.toString('latin1', start, start + 32))) return false;
  const end = packet.indexOf(0x0a, start);
  return end === -1 || end - start > limit;
}

/**
 * For Fastify's `clientErrorHandler` option: a request Node's HTTP parser refuses (invalid
 * method, header or framing) or that is not received within `requestTimeout` ms is answered with
 * the envelope, and its connection closed, as Fastify's default handler does. `headerLimit` is
 * Node's (`maxHeaderSize`, 16 KiB unless `--max-http-header-size` sets it).
 */
export function clientErrorHandler(requestTimeout: number, headerLimit = maxHeaderSize) {
  return (error: ParserError, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    // As Node does: answer unless a response to an earlier request on this connection has begun,
    // which an answer written now would corrupt.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const apiError = clientError(error, requestTimeout, headerLimit);
      const body = JSON.stringify(errorBody(apiError));
      const status = apiError.statusCode;
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}

/**
 * For the HTTP server's 'checkExpectation' event: a request whose `Expect` is not `100-continue`
 * (which Node answers itself) never reaches Fastify, and Node's default answer is a 417 with an
 * empty body and no log line. Listening to the event replaces that default with the envelope,
 * logged as any answered request is. The connection is closed: a body the client sends anyway
 * is not read.
 */
export function refuseExpectation(
  logger: FastifyBaseLogger,
  requestId: (request: IncomingMessage) => string,
) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    const id = requestId(request);
    const error = new ApiError(
      'EXPECTATION_FAILED',
      `only "Expect: 100-continue" is supported, not ${JSON.stringify(request.headers.expect?.slice(0, 100))}; send the request without that header`,
    );
    const body = JSON.stringify(errorBody(error));
    response.writeHead(error.statusCode, {
      connection: 'close',
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-request-id': id,
    });
    response.end(body);
    logger.info(
      { reqId: id, method: request.method, url: request.url, statusCode: error.statusCode },
      'request completed',
    );
  };
}

/**
 * Makes every error answer, and every unknown route, one envelope from the catalogue. Returns the
 * log of the store's faults, which closes with `app`.
 */
export function installErrorHandling(
  app: FastifyInstance,
  options: StoreFaultLogOptions = {},
): StoreFaultLog {
  const faults = new StoreFaultLog(app.log, options);
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, faults));
  app.addHook('onClose', (_instance, done) => {
    faults.close();
    done();
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError(
      'NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0]}; see the API in the README`,
    );
    return reply.code(404).send(errorBody(error));
  });
  return faults;
}
