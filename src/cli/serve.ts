import { InvalidOptionError, SECOND } from '../index.js';
import { loadConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import { createService } from '../server/service.js';

/** After the grace, how long closing may still take before the process gives up and exits 1. */
const EXIT_MARGIN = 5 * SECOND;

/**
 * `offload serve`: reads the configuration, serves until SIGTERM or SIGINT, then stops accepting,
 * answers the requests in flight, gives running tasks SHUTDOWN_GRACE to finish (the rest are
 * handed back to the queue) and exits 0. A second signal exits at once.
 */
export async function serve(env: NodeJS.ProcessEnv): Promise<void> {
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

  let service;
  try {
    service = await createService(config, { logger });
    await service.listen();
  } catch (error) {
    logger.fatal({ err: error }, `could not start: ${(error as Error).message}`);
    await service?.close().catch(() => undefined);
    return exit(1);
  }

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
    service.close().then(
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
