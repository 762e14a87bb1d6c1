/**
 * `offload/fastify`: request-scoped background tasks for Fastify, FastAPI style.
 *
 * ```ts
 * await app.register(offload, { runtime });
 * app.post('/signup', async (request) => {
 *   request.background.add(sendWelcome, { email: request.body.email });
 *   return { ok: true };
 * });
 * ```
 *
 * Tasks a handler adds are stored right before the response is sent, so an ok answer means they
 * are durable; a request that ends in an error (the handler threw, or sent an `Error`) stores
 * none. A reply the handler sends itself stores them whatever its status, as FastAPI runs a
 * response's background tasks. If the store cannot take them, the request fails with a 503
 * `BackgroundCommitError` instead of a false ok. A reply sent around Fastify (`reply.hijack()`,
 * `reply.raw`) has no moment before it: its tasks are stored once it is sent, with a warning;
 * call `await request.background.commit()` before such a reply to store them first. While the
 * app answers requests, a backlog of tasks draining in this process takes about half the event
 * loop, so that answers stay fast.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Runtime } from '../index.js';
import { kAnsweredRequest } from '../runtime/runtime.js';
import { Background, traceparentHeader } from '../adapters/background.js';
import { acceptedAnswer, type AcceptedOptions } from '../adapters/answers.js';
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

export interface OffloadPluginOptions {
  /** The runtime that stores and runs the tasks; see `createRuntime`. */
  runtime: Runtime;
  /** Start the runtime when Fastify is ready (`onReady`). Default true. */
  start?: boolean;
  /** Stop the runtime (gracefully, see its `shutdownGrace`) when Fastify closes. Default true. */
  stop?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tasks this request schedules to run after its response. */
    readonly background: Background;
  }
  interface FastifyInstance {
    /** The runtime given to the `offload` plugin. */
    readonly offload: Runtime;
  }
}

const kBackground = Symbol('offload.background');
type WithBackground = FastifyRequest & { [kBackground]: Background | null };

const plugin: FastifyPluginCallback<OffloadPluginOptions> = (fastify, options, done) => {
  const { runtime, start = true, stop = true } = options;
  if (!runtime || typeof runtime.enqueue !== 'function') {
    done(
      new TypeError('offload/fastify: options.runtime must be a runtime made by createRuntime()'),
    );
    return;
  }
  // A runtime from another copy of this package has no such method: answers then go unnoticed.
  const answered = kAnsweredRequest in runtime ? () => runtime[kAnsweredRequest]() : () => {};
  // Made on first use. The field is declared on every request (null), so requests keep one shape.
  fastify.decorateRequest(kBackground, null);
  // Given to requests answered without one, so that a late add() throws instead of being lost.
  const closed = new Background(runtime);
  void closed.close();

  fastify.decorate('offload', {
    getter: () => runtime,
  });
  fastify.decorateRequest('background', {
    getter(this: FastifyRequest) {
      return ((this as WithBackground)[kBackground] ??= new Background(
        runtime,
        traceparentHeader(this.headers.traceparent),
      ));
    },
  });

  fastify.addHook('onError', (request, _reply, _error, hookDone) => {
    (request as WithBackground)[kBackground]?.discard();
    hookDone();
  });

  fastify.addHook('onSend', (request, _reply, payload, hookDone) => {
    // A backlog draining now leaves the event loop to requests about half the time.
    answered();
    const background = (request as WithBackground)[kBackground];
    if (!background) (request as WithBackground)[kBackground] = closed;
    const committing = background?.close();
    if (!committing) return hookDone(null, payload);
    committing.then(
      () => hookDone(null, payload),
      (error: Error) => hookDone(error),
    );
  });

  // A reply sent around Fastify (reply.hijack(), reply.raw) skips onSend: what its handler added
  // is stored now rather than lost, and a later add() throws.
  fastify.addHook('onResponse', (request, _reply, hookDone) => {
    const background = (request as WithBackground)[kBackground];
    if (!background) (request as WithBackground)[kBackground] = closed;
    const late = background?.close();
    hookDone();
    late?.then(
      (tasks) =>
        request.log.warn(
          { taskIds: tasks.map((task) => task.id) },
          'request.background: the reply was sent around onSend (reply.hijack() or reply.raw), so its tasks were stored after it; call await request.background.commit() before such a reply to store them first',
        ),
      (error: unknown) =>
        request.log.error(
          { err: error },
          'request.background: the reply was sent around onSend (reply.hijack() or reply.raw), and its tasks could not be stored afterwards: they are lost',
        ),
    );
  });

  if (start) fastify.addHook('onReady', () => runtime.start());
  if (stop) fastify.addHook('onClose', () => runtime.stop());
  done();
};

/**
 * Answers `202 Accepted` with `Location: /api/tasks/:id` and `{"ok":true,"id":"…"}`, for a task
 * that `await request.background.commit()` returned: `return accepted(reply, task)`.
 */
export function accepted(
  reply: FastifyReply,
  task: Pick<Task, 'id'>,
  options?: AcceptedOptions,
): FastifyReply {
  const { status, headers, body } = acceptedAnswer(task, options);
  return reply.code(status).headers(headers).send(body);
}

/** The Fastify plugin: `app.register(offload, { runtime })`. */
export const offload = fp(plugin, { fastify: '5.x', name: 'offload' });
export default offload;
