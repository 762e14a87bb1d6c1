#!/usr/bin/env node
import { createRequire } from 'node:module';
import { OffloadError } from '../errors/offload-error.js';
import { MIGRATE_USAGE, migrateCommand } from './migrate.js';
import { tasksCommand, TASKS_USAGE, UsageError } from './tasks.js';

const USAGE = `offload — durable background tasks for Node.js

${TASKS_USAGE}

${MIGRATE_USAGE}

offload --help | --version`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'tasks':
      return tasksCommand(rest, process.env);
    case 'migrate':
      return migrateCommand(rest, process.env);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
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
    process.exitCode = code;
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
