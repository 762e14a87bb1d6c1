import type { Logger as PinoLogger } from 'pino';
import { InvalidOptionError, OffloadError, SECOND } from '../index.js';
import { SCHEMA_VERSION } from '../store/postgres/migrations.js';
import { loadConfig, type ServiceConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import {
  createService,
  createServiceRuntime,
  openServiceStore,
  type Service,
} from '../server/service.js';
import { namingSource } from './store-error.js';

/** After the grace, how long closing may still take before the process gives up and exits 1. */
const EXIT_MARGIN = 5 * SECOND;

/**
 * `offload serve`: reads the configuration, serves until SIGTERM or SIGINT, then stops accepting,
 * answers the requests in flight, gives running tasks SHUTDOWN_GRACE to finish (the rest are
 * handed back to the queue) and exits 0. A second signal exits at once. With `runner: false`
 * (`--no-runner`) it stores tasks but runs none: workers do.
 */
export async function serve(env: NodeJS.ProcessEnv, { runner = true } = {}): Promise<void> {
  const { config, logger, exit } = setUp(env);
  let service: Service | undefined;
  const starting = (async () => {
    service = await createService(config, { logger, runner });
    await service.listen();
  })();
  // Listening for signals from the start: a SIGTERM while starting stops once started, handing
  // back what was claimed meanwhile, instead of killing the process.
  stopOnSignal(config, logger, exit, async () => {
    await starting.catch(() => undefined);
    await service?.close();
  });
  try {
    await starting;
  } catch (error) {
    logStartFailure(logger, error);
    await service?.close().catch(() => undefined);
    return exit(1);
  }
}

/**
 * `offload worker`: runs tasks and serves no HTTP, until SIGTERM or SIGINT, which stop it as they
 * stop `serve`. For a shared store (PostgreSQL): as many workers as the load needs, on any host.
 */
export async function work(env: NodeJS.ProcessEnv): Promise<void> {
  const { config, logger, exit } = setUp(env);
  // Delivery calls are logged by the tasks; a worker serves no /metrics to count them on.
  const { runtime } = createServiceRuntime(config, openServiceStore(config, logger), logger);
  const starting = runtime.start();
  stopOnSignal(config, logger, exit, async () => {
    await starting.catch(() => undefined);
    await runtime.stop();
  });
  try {
    await starting;
  } catch (error) {
    logStartFailure(logger, error);
    await runtime.stop().catch(() => undefined);
    return exit(1);
  }
  logger.info({ concurrency: config.concurrency ?? 'default' }, 'worker started');
}

/**
 * `offload migrate`: brings the store's schema up to date and exits; nothing else starts. Every
 * process also migrates when it starts (safely at once, under a lock); this is for deploy steps
 * that want it done first.
 */
export async function migrate(env: NodeJS.ProcessEnv): Promise<number> {
  const { config, logger } = setUp(env);
  const store = openServiceStore(config, logger);
  try {
    await store.open();
  } catch (error) {
    throw namingSource(error, 'DATABASE_URL');
  } finally {
    await store.close();
  }
  const version =
    store.kind === 'postgres' ? ` ${config.databaseSchema} at version ${SCHEMA_VERSION}` : '';
  console.log(`offload: the ${store.kind} store is up to date${version}`);
  return 0;
}

/**
 * Logs why the start failed. Our own errors (a store that cannot be opened, a port in use) are
 * logged by their message alone, which says what to change: a stack would only bury it.
 */
function logStartFailure(logger: PinoLogger, failure: unknown): void {
  const error = namingSource(failure, 'DATABASE_URL');
  if (error instanceof OffloadError) {
    logger.fatal({ code: error.code }, `could not start: ${error.message}`);
  } else {
    logger.fatal({ err: error }, `could not start: ${(error as Error).message}`);
  }
}

/** Reads the configuration (exiting with a message naming a bad variable) and makes the logger. */
function setUp(env: NodeJS.ProcessEnv): {
  config: ServiceConfig;
  logger: PinoLogger;
  exit(code: number): never;
} {
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    console.error(`offload: invalid configuration: ${error.message}`);
    process.exit(1);
  }
  const logger = createLogger({ level: config.logLevel });
  const exit = (code: number): never => {
    logger.flush();
    process.exit(code);
  };
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception; exiting');
    exit(1);
  });
  process.on('unhandledRejection', (error) => {
    logger.fatal({ err: error }, 'unhandled promise rejection; exiting');
    exit(1);
  });
  return { config, logger, exit };
}

/** On SIGTERM or SIGINT: `close` within the grace, then exit 0 (1 if it failed or took too long). */
function stopOnSignal(
  config: ServiceConfig,
  logger: PinoLogger,
  exit: (code: number) => never,
  close: () => Promise<void>,
): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(
        { signal },
        'second signal: exiting now; running tasks will run again after a restart',
      );
      return exit(1);
    }
    stopping = true;
    logger.info(
      { signal, shutdownGrace: config.shutdownGrace },
      'stopping: answering the requests in flight, then giving running tasks the shutdown grace',
    );
    setTimeout(() => {
      logger.error('stopping took longer than the shutdown grace allows; exiting anyway');
      exit(1);
    }, config.shutdownGrace + EXIT_MARGIN).unref();
    close().then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'stopped, but some steps failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
