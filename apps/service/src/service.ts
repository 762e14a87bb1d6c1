import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import {
  createRuntime,
  openStore,
  type Clock,
  type Runtime,
  type Store,
  type TaskDefinition,
} from 'offload';
import { Notifications, type DeliveryCall, type Resolver } from '@offload/notifications';
import { buildApp } from './app.js';
import { describeConfig, type ServiceConfig } from './config.js';
import { limitConnections } from './connections.js';
import { gracefulClose } from './drain.js';
import { listenError } from './listen-error.js';
import { ServiceMetrics } from './metrics.js';
import { scheduledNotificationTask } from './scheduled-notification.js';

export interface ServiceOptions {
  logger: PinoLogger;
  /** Default: the store of `config.databaseUrl`. Tests pass one they can break. */
  store?: Store;
  /** Export Node's process metrics too; default true. */
  processMetrics?: boolean;
  /** Run tasks in this process too; default true. False serves the API only. */
  runner?: boolean;
  /** How webhook and push host names are resolved; default the system's. Tests map names to 127.0.0.1. */
  resolve?: Resolver;
  /** How long (ms) a client may take to send a whole request; default 30 s (see `buildApp`). */
  requestTimeout?: number;
  /** The time of the runtime and of requests; default the system clock. Tests pass a fake one. */
  clock?: Clock;
}

/** The notification service, assembled but not listening yet. */
export interface Service {
  app: FastifyInstance;
  runtime: Runtime;
  store: Store;
  config: ServiceConfig;
  /** Opens the store, starts the runtime and listens; resolves with the address. */
  listen(): Promise<string>;
  /**
   * Stops accepting, answers the requests in flight (and, for up to a second, those that arrive
   * on connections already open), stops the runtime. Idempotent.
   */
  close(): Promise<void>;
}

/** The store `config` names, reporting connection trouble on `logger`. */
export function openServiceStore(config: ServiceConfig, logger: PinoLogger): Promise<Store> {
  return openStore(config.databaseUrl, {
    schema: config.databaseSchema,
    poolSize: config.databasePoolSize,
    logger: logger.child({ component: 'store' }),
  });
}

/**
 * The runtime of the notification service: the channels' tasks and the configured policy.
 * `onCall` hears of every outgoing delivery call (for metrics).
 */
export function createServiceRuntime(
  config: ServiceConfig,
  store: Store,
  logger: PinoLogger,
  options: { resolve?: Resolver; onCall?: (call: DeliveryCall) => void; clock?: Clock } = {},
): { runtime: Runtime; notifications: Notifications } {
  const notifications = new Notifications({
    demoDelay: config.notifyDemoDelay,
    channels: config.channels,
    store,
    topics: config.topics,
    unsubscribe:
      config.unsubscribeSecret !== undefined && config.publicUrl !== undefined
        ? { secret: config.unsubscribeSecret, publicUrl: config.publicUrl }
        : null,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.onCall ? { onCall: options.onCall } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  // Defined before the runtime it enqueues on (which needs it among its tasks); runs after.
  const scheduled = scheduledNotificationTask(notifications, (requests) =>
    runtime.enqueueMany(requests),
  );
  const runtime = createRuntime({
    store,
    tasks: [...notifications.tasks, scheduled as TaskDefinition<never>],
    timeout: config.taskTimeout,
    shutdownGrace: config.shutdownGrace,
    ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
    logger: logger.child({ component: 'runtime' }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  notifications.attach(runtime);
  return { runtime, notifications };
}

export async function createService(
  config: ServiceConfig,
  options: ServiceOptions,
): Promise<Service> {
  const { logger } = options;
  const store = options.store ?? (await openServiceStore(config, logger));
  // The metrics need the runtime, which needs the tasks that report calls: forwarded once made.
  let countCall: (call: DeliveryCall) => void = () => undefined;
  const { runtime, notifications } = createServiceRuntime(config, store, logger, {
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    onCall: (call) => countCall(call),
  });
  const metrics = new ServiceMetrics({
    runtime,
    store,
    logger,
    processMetrics: options.processMetrics ?? true,
  });
  countCall = (call) => metrics.countCall(call);
  const app = await buildApp({
    runtime,
    store,
    metrics,
    logger,
    apiKey: config.apiKey,
    metricsPublic: config.metricsPublic,
    dashboardReadOnly: config.dashboardReadOnly ?? false,
    ...(config.inbox ? { inbox: config.inbox } : {}),
    notifications,
    runner: options.runner ?? true,
    ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
  });
  app.addHook('onClose', () => metrics.close());
  const stopLimiting = limitConnections(app.server, { max: config.maxConnections, logger });
  app.addHook('onClose', stopLimiting);
  const closeGracefully = gracefulClose(app);
  let closing: Promise<void> | null = null;

  return {
    app,
    runtime,
    store,
    config,
    async listen() {
      logger.info(
        { config: describeConfig(config), store: store.kind, runner: options.runner ?? true },
        'starting',
      );
      if (config.apiKey === undefined) {
        logger.warn('OFFLOAD_API_KEY is not set: /api/* is open to anyone who can reach this port');
      }
      const links = unsubscribeProblem(config);
      if (links !== null && config.channels.email !== null) {
        logger.warn(`emails carry no one-click unsubscribe link: ${links}`);
      }
      try {
        return await app.listen({ port: config.port, host: config.host });
      } catch (error) {
        throw listenError(error, config.host, config.port);
      }
    },
    close: () => (closing ??= closeGracefully()),
  };
}

/** Why emails to stored recipients carry no unsubscribe link, or null when they do. */
export function unsubscribeProblem(config: ServiceConfig): string | null {
  const missing = [
    ...(config.publicUrl === undefined ? ['PUBLIC_URL'] : []),
    ...(config.unsubscribeSecret === undefined ? ['UNSUBSCRIBE_SECRET (or OFFLOAD_API_KEY)'] : []),
  ];
  return missing.length === 0 ? null : `set ${missing.join(' and ')} to sign them`;
}
