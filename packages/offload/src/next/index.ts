/**
 * `offload/next`: request-scoped background tasks for Next.js App Router route handlers.
 *
 * ```ts
 * // app/api/signup/route.ts
 * import { withBackground } from 'offload/next';
 * import { runtime, sendWelcome } from '@/lib/offload';
 *
 * export const POST = withBackground(runtime, async (request, background) => {
 *   const { email } = await request.json();
 *   background.add(sendWelcome, { email });
 *   return Response.json({ ok: true });
 * });
 * ```
 *
 * The tasks a handler adds are stored after it returns its `Response` and before that response is
 * handed to Next, so an ok answer means they are durable; a store that cannot take them turns the
 * answer into a 503 with the error envelope. A handler that throws stores nothing, and its error
 * goes on to Next (a 500, or what `notFound()` and `redirect()` mean), except a
 * `BackgroundCommitError` from `commit()`, answered 503 here. The runtime starts at the first
 * request, not when the route module is loaded (`next build` loads it); Next gives route handlers
 * no hook at server close: stop the runtime on SIGTERM yourself (docs/adapters.md).
 */
import { Background, traceparentHeader } from '../adapters/background.js';
import {
  acceptedAnswer,
  errorAnswer,
  type AcceptedOptions,
  type Answer,
} from '../adapters/answers.js';
import { RuntimeLink } from '../adapters/runtime-link.js';
import { BackgroundCommitError } from '../errors/background-commit.js';
import type { Runtime } from '../runtime/runtime.js';
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

export interface WithBackgroundOptions {
  /**
   * Start the runtime at the first request, so that tasks run in this process. Default true;
   * false makes an API-only process, whose tasks other processes run on a shared store.
   */
  start?: boolean;
}

/** A route handler that also gets the request's `background`; `context` is Next's (`params`). */
export type BackgroundRouteHandler<C> = (
  request: Request,
  background: Background,
  context: C,
) => Response | Promise<Response>;

/**
 * Wraps `handler` into a route handler (`export const POST = withBackground(runtime, …)`) that
 * gives it a `background`. If the runtime failed to start, every request is answered 503.
 */
export function withBackground<C = unknown>(
  runtime: Runtime,
  handler: BackgroundRouteHandler<C>,
  options: WithBackgroundOptions = {},
): (request: Request, context: C) => Promise<Response> {
  if (typeof handler !== 'function') {
    throw new TypeError('offload/next: withBackground(runtime, handler) needs a handler function');
  }
  // Checks the options now; starts nothing (route modules are loaded by `next build` too).
  new RuntimeLink({ ...options, runtime, start: false, stop: false }, 'offload/next', [
    'runtime',
    'start',
    'stop',
  ]);
  let link: RuntimeLink | null = null;
  return async (request, context) => {
    link ??= new RuntimeLink(
      { runtime, start: options.start ?? true, stop: false },
      'offload/next',
    );
    const refused = link.admit(undefined);
    if (refused) return toResponse(errorAnswer(refused));
    const background = new Background(
      runtime,
      traceparentHeader(request.headers.get('traceparent')),
    );
    let response: Response;
    try {
      response = await handler(request, background, context);
    } catch (error) {
      background.discard();
      link.answered();
      if (error instanceof BackgroundCommitError) return toResponse(errorAnswer(error));
      throw error;
    }
    link.answered();
    const committing = background.close();
    if (committing) {
      try {
        await committing;
      } catch (error) {
        return toResponse(errorAnswer(error));
      }
    }
    return response;
  };
}

/**
 * Answers `202 Accepted` with `Location: /api/tasks/:id` and `{"ok":true,"id":"…"}`, for a task
 * that `await background.commit()` returned: `return accepted(task)`.
 */
export function accepted(task: Pick<Task, 'id'>, options?: AcceptedOptions): Response {
  return toResponse(acceptedAnswer(task, options));
}

function toResponse({ status, headers, body }: Answer<unknown>): Response {
  return Response.json(body, { status, headers });
}
