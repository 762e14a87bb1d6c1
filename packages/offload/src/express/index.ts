/**
 * `offload/express`: request-scoped background tasks for Express 4 and 5.
 *
 * ```ts
 * app.use(offload({ runtime }));
 * app.post('/signup', (req, res) => {
 *   req.background.add(sendWelcome, { email: req.body.email });
 *   res.json({ ok: true });
 * });
 * // after the routes, before your own error handlers:
 * app.use(offloadErrors());
 * ```
 *
 * The tasks a handler adds are stored before anything of its response is written: the first
 * write waits for them, so an ok answer means they are durable, and a store that cannot take them
 * turns the answer into a 503 with the error envelope. Express tells a middleware nothing of an
 * error that reaches an error handler, so `offloadErrors()` listens for them there: a request
 * whose handler threw (or called `next(error)`) stores nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { Background, traceparentHeader } from '../adapters/background.js';
import { errorAnswer, writeAnswer } from '../adapters/answers.js';
import { defineOnRequests, holdOf, holdThroughPrototype } from '../adapters/hold.js';
import { RuntimeLink, type AdapterOptions } from '../adapters/runtime-link.js';
import { BackgroundCommitError } from '../errors/background-commit.js';

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

/**
 * The middleware's options: `runtime`; `start` (default true) starts it now; `stop` (default
 * true) stops it when the server of the first request closes (Express apps have no close of
 * their own: `app.listen()` returns that server).
 */
export type OffloadOptions = AdapterOptions;

declare global {
  // Express declares its request in this global namespace, for apps and middleware to extend.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The tasks this request schedules to run after its response (`offload/express`). */
      readonly background: Background;
    }
  }
}

/**
 * The middleware that gives each request `req.background`: `app.use(offload({ runtime }))`,
 * before the routes that add tasks. If the runtime failed to start, it answers every request 503.
 *
 * Express sets the prototypes of its requests and responses to its own (each app's, over ones
 * every app shares); the middleware adds its methods to the shared ones, once, rather than to
 * every request and response, which V8 makes slow for objects whose prototype was set so. A
 * response that no `offload()` middleware saw calls straight through them.
 */
export function offload(options: OffloadOptions): RequestHandler {
  const link = new RuntimeLink(options, 'offload/express');
  const { runtime } = link;
  return function offloadBackground(req, res, next) {
    const refused = link.admit(req);
    if (refused) return writeAnswer(res, errorAnswer(refused));
    const background = new Background(runtime, traceparentHeader(req.headers.traceparent));
    const hold = holdThroughPrototype(res, background, link.answered);
    if (!defineOnRequests(req, 'background', backgroundOf)) {
      (req as unknown as { background: Background }).background = hold.background;
    }
    next();
  };
}

function backgroundOf(req: IncomingMessage & { res?: ServerResponse }): Background | undefined {
  return holdOf(req.res)?.background;
}

/**
 * The error middleware that goes with `offload()`, after the routes and before the app's own error
 * handlers: a request that failed stores none of the tasks it added. A `BackgroundCommitError`
 * (from `await req.background.commit()`) is answered here, 503 with the error envelope; every
 * error goes on to the next error handler otherwise.
 */
export function offloadErrors(): ErrorRequestHandler {
  return function offloadBackgroundErrors(error, req, res, next) {
    (req as { background?: Background }).background?.discard();
    if (error instanceof BackgroundCommitError && !res.headersSent) {
      return writeAnswer(res, errorAnswer(error));
    }
    next(error);
  };
}

export default offload;
