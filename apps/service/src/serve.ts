import type { Logger as PinoLogger } from 'pino';
import { InvalidOptionError, OffloadError, SECOND, type Runtime } from 'offload';
import { loadConfig, type ServiceConfig } from './config.js';
import { createLogger } from './logger.js';
import { createService, createServiceRuntime, openServiceStore, type Service } from './service.js';

/** The codes of a store that could not be opened. */
const STORE_CODES = ['STORE_OPEN_FAILED', 'STORE_NOT_FOUND', 'DRIVER_NOT_INSTALLED'];

/** After the grace, how long closing may still take before the process gives up and exits 1. */
const EXIT_MARGIN = 5 * SECOND;

/**
 * `offload-service serve`: reads the configuration, serves until SIGTERM or SIGINT, then stops accepting,
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
 * `offload-service worker`: runs tasks and serves no HTTP, until SIGTERM or SIGINT, which stop it as they
 * stop `serve`. For a shared store (PostgreSQL): as many workers as the load needs, on any host.
 */
export async function work(env: NodeJS.ProcessEnv): Promise<void> {
  const { config, logger, exit } = setUp(env);
  // Delivery calls are logged by the tasks; a worker serves no /metrics to count them on.
  let runtime: Runtime | undefined;
  const starting = (async () => {
    runtime = createServiceRuntime(config, await openServiceStore(config, logger), logger).runtime;
    await runtime.start();
  })();
  stopOnSignal(config, logger, exit, async () => {
    await starting.catch(() => undefined);
    await runtime?.stop();
  });
  try {
    await starting;
  } catch (error) {
    logStartFailure(logger, error);
    await runtime?.stop().catch(() => undefined);
    return exit(1);
  }
  logger.info({ concurrency: config.concurrency ?? 'default' }, 'worker started');
}

/**
 * Logs why the start failed. Our own errors (a store that cannot be opened, a port in use) are
 * logged by their message alone, which says what to change: a stack would only bury it.
 */
function logStartFailure(logger: PinoLogger, error: unknown): void {
  if (error instanceof OffloadError) {
    // A store that cannot be opened: the setting its URL came from is what to change.
    const source = STORE_CODES.includes(error.code) ? 'DATABASE_URL: ' : '';
    logger.fatal({ code: error.code }, `could not start: ${source}${error.message}`);
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
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logFormat === undefined ? undefined : config.logFormat === 'pretty',
  });
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
