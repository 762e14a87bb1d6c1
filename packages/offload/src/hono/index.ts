/**
 * `offload/hono`: request-scoped background tasks for Hono.
 *
 * ```ts
 * const app = new Hono();
 * app.use(offload({ runtime }));
 * app.post('/signup', async (c) => {
 *   c.get('background').add(sendWelcome, { email: (await c.req.json()).email });
 *   return c.json({ ok: true });
 * });
 * const server = serve({ fetch: app.fetch, port: 3000 }); // @hono/node-server
 * ```
 *
 * The tasks a handler adds are stored after it returns its response and before the middleware
 * hands that response on to be written, so an ok answer means they are durable; a store that
 * cannot take them turns the answer into a 503 with the error envelope. A handler that throws
 * (an `HTTPException` included) stores nothing: the middleware sees the error Hono's `onError`
 * answered.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { Background, traceparentHeader } from '../adapters/background.js';
import {
  acceptedAnswer,
  errorAnswer,
  type AcceptedOptions,
  type Answer,
} from '../adapters/answers.js';
import { RuntimeLink, type AdapterOptions } from '../adapters/runtime-link.js';
import { BackgroundCommitError } from '../errors/background-commit.js';
import type { Task } from '../types.js';

export { Background } from '../adapters/background.js';
export { BackgroundCommitError } from '../errors/background-commit.js';
export {
  acceptedAnswer,
  errorAnswer,
  type AcceptedBody,
  type AcceptedOptions,
  type Answer,
  type ErrorEnvelope,
} from '../adapters/answers.js';

/**
 * The middleware's options: `runtime`; `start` (default true) starts it now; `stop` (default
 * true) stops it when the node:http server of the first request closes, the one
 * `@hono/node-server`'s `serve()` returns (on other runtimes, stop it yourself).
 */
export type OffloadOptions = AdapterOptions;

declare module 'hono' {
  interface ContextVariableMap {
    /** The tasks this request schedules to run after its response (`offload/hono`). */
    background: Background;
  }
}

/**
 * The middleware that gives each request `c.get('background')`: `app.use(offload({ runtime }))`,
 * before the routes that add tasks. If the runtime failed to start, it answers every request 503.
 */
export function offload(options: OffloadOptions): MiddlewareHandler {
  const link = new RuntimeLink(options, 'offload/hono');
  const { runtime } = link;
  return async function offloadBackground(c, next) {
    const refused = link.admit((c.env as { incoming?: IncomingMessage } | undefined)?.incoming);
    if (refused) return answer(c, errorAnswer(refused));
    const background = new Background(runtime, traceparentHeader(c.req.header('traceparent')));
    c.set('background', background);
    await next();
    link.answered();
    if (c.error) {
      background.discard();
      if (c.error instanceof BackgroundCommitError) replace(c, errorAnswer(c.error));
      return;
    }
    const committing = background.close();
    if (!committing) return;
    try {
      await committing;
    } catch (error) {
      replace(c, errorAnswer(error));
    }
  };
}

/**
 * Answers `202 Accepted` with `Location: /api/tasks/:id` and `{"ok":true,"id":"…"}`, for a task
 * that `await c.get('background').commit()` returned: `return accepted(c, task)`.
 */
export function accepted(c: Context, task: Pick<Task, 'id'>, options?: AcceptedOptions): Response {
  return answer(c, acceptedAnswer(task, options));
}

function answer(c: Context, { status, headers, body }: Answer<unknown>): Response {
  return c.json(body, status as ContentfulStatusCode, headers);
}

/** Puts `answer` in place of the response, none of whose headers it keeps. */
function replace(c: Context, { status, headers, body }: Answer<unknown>): void {
  c.res = undefined;
  c.res = new Response(JSON.stringify(body), { status, headers });
}

export default offload;
