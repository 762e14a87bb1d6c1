#!/usr/bin/env node
import { createRequire } from 'node:module';
import { OffloadError } from 'offload';
import { generateVapidKeys } from '@offload/notifications';
import { serve, work } from './serve.js';

/** A mistake in how the command was called: exit code 2 with the usage. */
class UsageError extends Error {}

const USAGE = `offload-service — the notification service, built on Offload

offload-service [serve]     serve the HTTP API and run tasks (configured by the environment,
                            see docs/service.md)
offload-service serve --no-runner
                            serve the HTTP API only: store tasks, leave running them to workers
offload-service worker      run tasks, serve no HTTP (for a shared PostgreSQL store)
offload-service vapid       print a new VAPID key pair for Web Push, as environment variables
offload-service --help | --version

The tasks themselves: offload tasks …, and offload migrate (see offload --help).`;

async function main(argv: string[]): Promise<number | undefined> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve': {
      const runner = rest[0] !== '--no-runner';
      if (rest.length > (runner ? 0 : 1))
        throw new UsageError(
          'offload-service serve takes no arguments but --no-runner; configure it with environment variables',
        );
      await serve(process.env, { runner });
      return undefined;
    }
    case 'worker':
      if (rest.length > 0)
        throw new UsageError(
          'offload-service worker takes no arguments; configure it with environment variables',
        );
      await work(process.env);
      return undefined;
    case 'vapid': {
      if (rest.length > 0) throw new UsageError('offload-service vapid takes no arguments');
      const keys = generateVapidKeys();
      console.log(`VAPID_PUBLIC_KEY=${keys.publicKey}\nVAPID_PRIVATE_KEY=${keys.privateKey}`);
      return 0;
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    case '--version':
    case '-v':
      console.log(
        (createRequire(import.meta.url)('../../package.json') as { version: string }).version,
      );
      return 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`offload-service: ${(error as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (error instanceof OffloadError) {
      console.error(`offload-service: ${error.message}`);
      process.exitCode = 1;
    } else {
      console.error(error);
      process.exitCode = 1;
    }
  },
);
