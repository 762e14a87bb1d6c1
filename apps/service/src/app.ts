import { randomBytes } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { offload } from 'offload/fastify';
import { SECOND, type Clock, type Runtime, type Store } from 'offload';
import { InboxTokens, type Notifications } from '@offload/notifications';
import { requireBearer } from './auth.js';
import { acceptJsonOnly } from './body.js';
import {
  ApiError,
  BODY_LIMIT,
  clientErrorHandler,
  installErrorHandling,
  refuseExpectation,
  sendFrameworkError,
} from './errors.js';
import type { ServiceMetrics } from './metrics.js';
import { mountDashboard } from './dashboard.js';
import { refuseOtherMethods } from './methods.js';
import { requestLogger } from './request-logger.js';
import type { InboxConfig } from './inbox-config.js';
import { InboxStreams } from './inbox-streams.js';
import { healthRoutes } from './routes/health.js';
import { inboxRoutes } from './routes/inbox.js';
import { notificationRoutes } from './routes/notifications.js';
import { recipientRoutes } from './routes/recipients.js';
import { scheduleRoutes } from './routes/schedules.js';
import { taskNameRoutes } from './routes/task-names.js';
import { suppressionRoutes } from './routes/suppressions.js';
import { taskRoutes } from './routes/tasks.js';
import { templateRoutes } from './routes/templates.js';
import { unsubscribeRoutes } from './routes/unsubscribe.js';

export interface AppOptions {
  runtime: Runtime;
  /** The runtime's store, for readiness and metrics. */
  store: Store;
  metrics: ServiceMetrics;
  /** A pino logger. */
  logger: FastifyBaseLogger;
  /** When set, `/api/*` and `/metrics` need `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
  /** Leave `/metrics` open even with `apiKey` (`METRICS_PUBLIC=true`). Default false. */
  metricsPublic?: boolean;
  /** The channels, their tasks (given to the runtime) and the rules requests are checked against. */
  notifications: Notifications;
  /** Run tasks in this process too (default), or only store them (`offload serve --no-runner`). */
  runner?: boolean;
  /**
   * How long (ms) a client may take to send a whole request, headers and body; default 30 s. A
   * slower one gets a 408 and its connection is closed, so slow clients cannot hold sockets open.
   */
  requestTimeout?: number;
  /** Where the time is read (for how often repeated store faults are logged); default the system's. */
  clock?: Clock;
  /** Serve the dashboard read-only (`DASHBOARD_READ_ONLY=true`): no actions. Default false. */
  dashboardReadOnly?: boolean;
  /** The inbox's token secret and stream limits; default: no tokens, the default limits. */
  inbox?: Partial<InboxConfig>;
}

export const DEFAULT_REQUEST_TIMEOUT = 30 * SECOND;

/** A client's request id is kept when it looks like one; otherwise a new one is made. */
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Fastify's `genReqId`: the client's `x-request-id` when it looks like one, else this app's random
 * prefix and a count, e.g. `Xq3v_9aLkM2p-1a2b`: unique across processes and restarts without a
 * random draw per request (a UUID each cost about 2% of a notify request's instructions).
 */
function requestIds(): (request: { headers: Record<string, unknown> }) => string {
  const prefix = randomBytes(9).toString('base64url');
  let count = 0;
  return (request) => {
    const given = request.headers['x-request-id'];
    if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
    count += 1;
    return `${prefix}-${count.toString(36)}`;
  };
}

/** `url` as it may be logged: a recipient token in the query is left out. */
function withoutToken(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/g, '$1[redacted]');
}

/** How many Host headers `rawHeaders` (name, value, name, value, …) holds. */
function countHosts(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') count += 1;
  }
  return count;
}

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
  metricsPublic = false,
  notifications,
  runner = true,
  requestTimeout = DEFAULT_REQUEST_TIMEOUT,
  clock,
  dashboardReadOnly = false,
  inbox = {},
}: AppOptions): Promise<FastifyInstance> {
  const genReqId = requestIds();
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    requestTimeout,
    http: {
      // Given to Node's constructor too: set only afterwards, as Fastify does, it stops slow
      // headers but not a body that never ends (Node 20).
      requestTimeout,
      // How often Node looks for requests past their time (its default is 30 s).
      connectionsCheckingInterval: Math.min(requestTimeout / 2, 5 * SECOND),
      // Checked below instead, so that the 400 is the envelope rather than Node's empty body.
      requireHostHeader: false,
    },
    // `/api/tasks/` is the list and `/healthz/` is health, as clients and proxies that add a
    // slash expect: without this, `/api/tasks/` read as a task with the id "" (a 400) while
    // `/healthz/` was a 404. A path with no route stays a 404, with or without the slash.
    routerOptions: { ignoreTrailingSlash: true },
    clientErrorHandler: clientErrorHandler(requestTimeout),
    frameworkErrors: sendFrameworkError,
    // Requests that arrive while closing get the service's own 503 (see drain.ts).
    return503OnClosing: false,
    // Requests are logged once, when answered, by the onResponse hook below.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    genReqId,
  });
  const faults = installErrorHandling(app, clock ? { clock } : {});
  acceptJsonOnly(app);
  // An `Expect` other than 100-continue gets the envelope too (Node's 'checkContinue' default
  // still answers 100-continue).
  app.server.on('checkExpectation', refuseExpectation(app.log, genReqId));

  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // RFC 9112 §3.2: a server must answer 400 to a request with more than one Host header (Node
    // keeps the first), and to an HTTP/1.1 request without one.
    const hosts = countHosts(request.raw.rawHeaders);
    if (hosts > 1) {
      return done(
        new ApiError(
          'BAD_REQUEST',
          `the request has ${hosts} Host headers; send exactly one, naming the server asked`,
        ),
      );
    }
    if (request.raw.httpVersion === '1.1' && hosts === 0) {
      return done(new ApiError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header'));
    }
    done();
  });
  // After the Host check: a malformed request is a 400 whatever its key.
  if (apiKey !== undefined) requireBearer(app, apiKey, { metricsPublic });
  // One line per request: every request at debug, failed ones at info (5xx are logged as errors),
  // but for the 503s of a store fault that were counted instead of logged (see StoreFaultLog).
  app.addHook('onResponse', (request, reply, done) => {
    const level = reply.statusCode >= 400 && !faults.wasCounted(request) ? 'info' : 'debug';
    request.log[level](
      {
        method: request.method,
        url: withoutToken(request.url),
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request completed',
    );
    done();
  });

  const { secret, ...streamSettings } = inbox;
  const streams = new InboxStreams(notifications.inbox, logger, streamSettings);
  const tokens = secret === undefined ? null : new InboxTokens(secret);
  metrics.trackInboxStreams(streams);
  // Open streams would hold the close until the clients go: they are ended, and reconnect.
  app.addHook('preClose', () => streams.close());
  const addMethodRefusals = refuseOtherMethods(app);
  await app.register(offload, { runtime, start: runner });
  await app.register(healthRoutes, { store, metrics });
  await app.register(
    async (api) => {
      await api.register(notificationRoutes, { notifications });
      await api.register(taskRoutes);
      await api.register(scheduleRoutes, { notifications });
      await api.register(taskNameRoutes);
      await api.register(templateRoutes, { notifications });
      await api.register(recipientRoutes, { notifications });
      await api.register(inboxRoutes, { notifications, streams, apiKey, tokens });
      await api.register(suppressionRoutes, { notifications });
    },
    { prefix: '/api' },
  );
  const links = notifications.unsubscribeLinks;
  if (links !== null) await app.register(unsubscribeRoutes, { notifications, links });
  await mountDashboard(app, { runtime, notifications, apiKey, readOnly: dashboardReadOnly });
  addMethodRefusals();
  return app;
}
