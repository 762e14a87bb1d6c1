import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { createRuntime, openStore, type Runtime, type Store } from '../index.js';
import { notificationTasks } from '../notifications/index.js';
import { buildApp } from './app.js';
import { describeConfig, type ServiceConfig } from './config.js';
import { ServiceMetrics } from './metrics.js';

export interface ServiceOptions {
  logger: PinoLogger;
  /** Default: the store of `config.databaseUrl`. Tests pass one they can break. */
  store?: Store;
  /** Export Node's process metrics too; default true. */
  processMetrics?: boolean;
  /** Run tasks in this process too; default true. False serves the API only. */
  runner?: boolean;
}

/** The notification service, assembled but not listening yet. */
export interface Service {
  app: FastifyInstance;
  runtime: Runtime;
  store: Store;
  config: ServiceConfig;
  /** Opens the store, starts the runtime and listens; resolves with the address. */
  listen(): Promise<string>;
  /** Stops accepting, answers the requests in flight, stops the runtime. Idempotent. */
  close(): Promise<void>;
}

/** The store `config` names, reporting connection trouble on `logger`. */
export function openServiceStore(config: ServiceConfig, logger: PinoLogger): Store {
  return openStore(config.databaseUrl, {
    schema: config.databaseSchema,
    poolSize: config.databasePoolSize,
    logger: logger.child({ component: 'store' }),
  });
}

/** The runtime of the notification service: its tasks and the configured policy. */
export function createServiceRuntime(
  config: ServiceConfig,
  store: Store,
  logger: PinoLogger,
): Runtime {
  return createRuntime({
    store,
    tasks: notificationTasks({ demoDelay: config.notifyDemoDelay }),
    timeout: config.taskTimeout,
    shutdownGrace: config.shutdownGrace,
    ...(config.concurrency === undefined ? {} : { concurrency: config.concurrency }),
    logger: logger.child({ component: 'runtime' }),
  });
}

export async function createService(
  config: ServiceConfig,
  options: ServiceOptions,
): Promise<Service> {
  const { logger } = options;
  const store = options.store ?? openServiceStore(config, logger);
  const runtime = createServiceRuntime(config, store, logger);
  const metrics = new ServiceMetrics({
    runtime,
    store,
    logger,
    processMetrics: options.processMetrics ?? true,
  });
  const app = await buildApp({
    runtime,
    store,
    metrics,
    logger,
    apiKey: config.apiKey,
    runner: options.runner ?? true,
  });
  app.addHook('onClose', () => metrics.close());
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
      return app.listen({ port: config.port, host: config.host });
    },
    close: () => (closing ??= app.close()),
  };
}
