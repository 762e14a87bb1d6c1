import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { offload } from '../fastify/index.js';
import type { Runtime, Store } from '../index.js';
import type { Notifications } from '../notifications/index.js';
import { requireBearer } from './auth.js';
import { BODY_LIMIT, installErrorHandling } from './errors.js';
import type { ServiceMetrics } from './metrics.js';
import { healthRoutes } from './routes/health.js';
import { notificationRoutes } from './routes/notifications.js';
import { taskRoutes } from './routes/tasks.js';

export interface AppOptions {
  runtime: Runtime;
  /** The runtime's store, for readiness and metrics. */
  store: Store;
  metrics: ServiceMetrics;
  /** A pino logger. */
  logger: FastifyBaseLogger;
  /** When set, `/api/*` needs `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
  /** The channels, their tasks (given to the runtime) and the rules requests are checked against. */
  notifications: Notifications;
  /** Run tasks in this process too (default), or only store them (`offload serve --no-runner`). */
  runner?: boolean;
}

/** A client's request id is kept when it looks like one; otherwise a new one is made. */
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The HTTP service: the notify endpoint and the status API under `/api`, health and metrics at
 * the root. The runtime starts when the app is ready (unless `runner` is false) and stops when it
 * closes.
 */
export async function buildApp({
  runtime,
  store,
  metrics,
  logger,
  apiKey,
  notifications,
  runner = true,
}: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    // Requests that arrive while closing get the service's own 503 (see drain.ts).
    return503OnClosing: false,
    // Requests are logged once, when answered, by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  installErrorHandling(app);
  acceptJsonOnly(app);

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // One line per request: every request at debug, failed ones at info (5xx are logged as errors).
  app.addHook('onResponse', (request, reply, done) => {
    const level = reply.statusCode >= 400 ? 'info' : 'debug';
    request.log[level](
      {
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request completed',
    );
    done();
  });

  await app.register(offload, { runtime, start: runner });
  await app.register(healthRoutes, { store, metrics });
  await app.register(
    async (api) => {
      if (apiKey !== undefined) requireBearer(api, apiKey);
      await api.register(notificationRoutes, { notifications });
      await api.register(taskRoutes);
    },
    { prefix: '/api' },
  );
  return app;
}

/**
 * Bodies are JSON or nothing: other content types get a 415. An empty JSON body counts as no
 * body, like a request without one, so `curl -X POST -H 'content-type: application/json'` works.
 */
function acceptJsonOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body.length === 0) return done(null, undefined);
    parseJson(request, body as string, done);
  });
}
