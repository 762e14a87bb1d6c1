/**
 * `offload/node`: request-scoped background tasks for a plain `node:http` server.
 *
 * ```ts
 * const server = http.createServer(
 *   withBackground(runtime, async (req, res, background) => {
 *     background.add(sendWelcome, { email });
 *     res.end('ok');
 *   }),
 * );
 * ```
 *
 * The tasks a handler adds are stored before anything of its response is written: the first
 * write (`writeHead`, `write`, `end` or `flushHeaders`) waits for them, so an ok answer means they
 * are durable. If the store cannot take them, the answer is a 503 with the error envelope instead
 * of the handler's. A handler that throws (or rejects) stores nothing and, if it wrote nothing,
 * is answered with the envelope, its error's `statusCode` or 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { Background, traceparentHeader } from '../adapters/background.js';
import { errorAnswer, writeAnswer } from '../adapters/answers.js';
import { holdFirstWrite, type Hold } from '../adapters/hold.js';
import { RuntimeLink, type AdapterOptions } from '../adapters/runtime-link.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Logger } from '../types.js';

export { Background } from '../adapters/background.js';
export { BackgroundCommitError } from '../errors/background-commit.js';
export {
  accepted,
  acceptedAnswer,
  errorAnswer,
  type AcceptedBody,
  type AcceptedOptions,
  type Answer,
  type ErrorEnvelope,
} from '../adapters/answers.js';

/** `withBackground`'s options: those of every adapter but the runtime, given apart, and: */
export interface WithBackgroundOptions extends Omit<AdapterOptions, 'runtime'> {
  /**
   * Where an error thrown by the handler is logged, with the request's method and URL (the
   * client gets only the error envelope). Default: a pino logger named `offload`, made at the
   * first such error.
   */
  logger?: Logger;
}

/** A `node:http` request handler that also gets the request's `background`. */
export type BackgroundHandler<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse<Req> = ServerResponse<Req>,
> = (req: Req, res: Res, background: Background) => unknown;

/**
 * Wraps `handler` into a `node:http` request listener that gives it a `background`. The runtime
 * starts now (unless `start: false`) and stops when the server of the first request closes
 * (unless `stop: false`). If it failed to start, every request is answered 503.
 */
export function withBackground<
  Req extends IncomingMessage = IncomingMessage,
  Res extends ServerResponse<Req> = ServerResponse<Req>,
>(
  runtime: Runtime,
  handler: BackgroundHandler<Req, Res>,
  options: WithBackgroundOptions = {},
): (req: Req, res: Res) => void {
  if (typeof handler !== 'function') {
    throw new TypeError('offload/node: withBackground(runtime, handler) needs a handler function');
  }
  const link = new RuntimeLink({ ...options, runtime }, 'offload/node', [
    'runtime',
    'start',
    'stop',
    'logger',
  ]);
  let logger = options.logger;
  const failed = (req: Req, res: Res, background: Background, hold: Hold, error: unknown) => {
    logger ??= pino({ name: 'offload' });
    logger.error(
      { err: error, method: req.method, url: req.url },
      'offload/node: the request handler failed',
    );
    answerFailure(res, background, hold, error);
  };
  return (req, res) => {
    const refused = link.admit(req);
    if (refused) return writeAnswer(res, errorAnswer(refused));
    const background = new Background(runtime, traceparentHeader(req.headers.traceparent));
    const hold = holdFirstWrite(res, background, link.answered);
    let result: unknown;
    try {
      result = handler(req, res, background);
    } catch (error) {
      return failed(req, res, background, hold, error);
    }
    if (isThenable(result)) {
      result.then(undefined, (error: unknown) => failed(req, res, background, hold, error));
    }
  };
}

/**
 * The handler threw: nothing it added is stored, and the answer is the error, unless it already
 * wrote one; a response it left half written is cut off.
 */
function answerFailure(
  res: ServerResponse,
  background: Background,
  hold: Hold,
  error: unknown,
): void {
  background.discard();
  if (hold.state === 'open' && !res.headersSent) return writeAnswer(res, errorAnswer(error));
  if (!hold.ended && !res.writableEnded) res.destroy();
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
