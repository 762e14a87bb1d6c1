#!/usr/bin/env node
import { createRequire } from 'node:module';
import { OffloadError } from '../index.js';
import { generateVapidKeys } from '../notifications/index.js';
import { migrate, serve, work } from './serve.js';
import { tasksCommand, TASKS_USAGE, UsageError } from './tasks.js';

const USAGE = `offload — durable background tasks; the notification service

offload [serve]     serve the HTTP API and run tasks (configured by the environment, see the README)
offload serve --no-runner
                    serve the HTTP API only: store tasks, leave running them to workers
offload worker      run tasks, serve no HTTP (for a shared PostgreSQL store)
offload migrate     bring the store's schema up to date, then exit
${TASKS_USAGE}
offload vapid       print a new VAPID key pair for Web Push, as environment variables
offload --help | --version`;

async function main(argv: string[]): Promise<number | undefined> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve': {
      const runner = rest[0] !== '--no-runner';
      if (rest.length > (runner ? 0 : 1))
        throw new UsageError(
          `offload serve takes no arguments but --no-runner; configure it with environment variables`,
        );
      await serve(process.env, { runner });
      return undefined;
    }
    case 'worker':
    case 'migrate':
      if (rest.length > 0)
        throw new UsageError(
          `offload ${command} takes no arguments; configure it with environment variables`,
        );
      if (command === 'migrate') return migrate(process.env);
      await work(process.env);
      return undefined;
    case 'tasks':
      return tasksCommand(rest, process.env);
    case 'vapid': {
      if (rest.length > 0) throw new UsageError('offload vapid takes no arguments');
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
      console.error(`offload: ${(error as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (error instanceof OffloadError) {
      console.error(`offload: ${error.message}`);
      process.exitCode = 1;
    } else {
      console.error(error);
      process.exitCode = 1;
    }
  },
);
