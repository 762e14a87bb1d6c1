#!/usr/bin/env node
import { createRequire } from 'node:module';
import { OffloadError } from '../errors/offload-error.js';
import { unknownOption, unknownWord, UsageError } from './args.js';
import { MIGRATE_USAGE, migrateCommand } from './migrate.js';
import { taskNamesCommand, TASK_NAMES_USAGE } from './task-names.js';
import { tasksCommand, TASKS_USAGE } from './tasks.js';
import { schedulesCommand, SCHEDULES_USAGE } from './schedules.js';

const USAGE = `offload — durable background tasks for Node.js

${TASKS_USAGE}

${SCHEDULES_USAGE}

${TASK_NAMES_USAGE}

${MIGRATE_USAGE}

offload --help | --version`;

const COMMANDS = {
  tasks: { run: tasksCommand, usage: TASKS_USAGE },
  schedules: { run: schedulesCommand, usage: SCHEDULES_USAGE },
  pause: { run: taskNamesCommand.bind(null, 'pause'), usage: TASK_NAMES_USAGE },
  resume: { run: taskNamesCommand.bind(null, 'resume'), usage: TASK_NAMES_USAGE },
  paused: { run: taskNamesCommand.bind(null, 'paused'), usage: TASK_NAMES_USAGE },
  migrate: { run: migrateCommand, usage: MIGRATE_USAGE },
} as const;

/** Runs the command `argv` names; returns the exit code. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && Object.hasOwn(COMMANDS, command)) {
    const { run, usage } = COMMANDS[command as keyof typeof COMMANDS];
    return run(rest, process.env).catch((error: unknown) => report(error, usage));
  }
  switch (command) {
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
      return report(
        new UsageError(
          command.startsWith('-')
            ? unknownOption(command, ['help', 'version'])
            : unknownWord('command', command, [...Object.keys(COMMANDS), 'help']),
        ),
        USAGE,
      );
  }
}

/**
 * The exit code of a failed command, its reason on stderr: 2 for a mistake in the call, told with
 * the usage of the command; 1 for anything else, told by its message alone when it is our own.
 */
function report(error: unknown, usage: string): number {
  if (error instanceof UsageError) {
    console.error(`offload: ${error.message}\n\n${usage}`);
    return 2;
  }
  console.error(error instanceof OffloadError ? `offload: ${error.message}` : error);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = report(error, USAGE);
  },
);
