#!/usr/bin/env node
import { createRequire } from 'node:module';
import { closestName, OffloadError } from 'offload';
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

/** The commands, the options each takes, and what it says of an argument it does not take. */
const COMMANDS: Record<string, { options: string[]; takes: string }> = {
  serve: {
    options: ['--no-runner'],
    takes: 'no arguments but --no-runner; configure it with environment variables',
  },
  worker: { options: [], takes: 'no arguments; configure it with environment variables' },
  vapid: { options: [], takes: 'no arguments' },
};

/** Taken anywhere, before a command or after it. */
const HELP = ['--help', '-h'];
const VERSION = ['--version', '-v'];

async function main(argv: string[]): Promise<number | undefined> {
  // `offload-service [serve]`: without a command, or with options first, the command is serve.
  const [command, args] =
    argv[0] === undefined || argv[0].startsWith('-') ? ['serve', argv] : [argv[0], argv.slice(1)];
  if (command === 'help' || args.some((arg) => HELP.includes(arg))) {
    console.log(USAGE);
    return 0;
  }
  if (args.some((arg) => VERSION.includes(arg))) {
    console.log((createRequire(import.meta.url)('../package.json') as { version: string }).version);
    return 0;
  }
  const spec = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (spec === undefined) {
    const guess = closestName(command, [...Object.keys(COMMANDS), 'help']);
    throw new UsageError(
      `unknown command ${JSON.stringify(command)}${guess === undefined ? '' : `; did you mean ${guess}?`}`,
    );
  }
  for (const arg of args) checkArgument(command, spec, arg);
  switch (command) {
    case 'serve':
      await serve(process.env, { runner: !args.includes('--no-runner') });
      return undefined;
    case 'worker':
      await work(process.env);
      return undefined;
    default: {
      // vapid
      const keys = generateVapidKeys();
      console.log(`VAPID_PUBLIC_KEY=${keys.publicKey}\nVAPID_PRIVATE_KEY=${keys.privateKey}`);
      return 0;
    }
  }
}

/** Refuses an argument `command` does not take, naming the option a typo most likely meant. */
function checkArgument(
  command: string,
  { options, takes }: (typeof COMMANDS)[string],
  arg: string,
) {
  if (options.includes(arg)) return;
  if (!arg.startsWith('-'))
    throw new UsageError(
      `unexpected argument ${JSON.stringify(arg)}: offload-service ${command} takes ${takes}`,
    );
  const name = arg.split('=')[0]!;
  if (options.includes(name)) throw new UsageError(`${name} takes no value`);
  const known = [...options, HELP[0]!, VERSION[0]!];
  const guess = name.startsWith('--')
    ? closestName(
        name.slice(2),
        known.map((option) => option.slice(2)),
      )
    : undefined;
  throw new UsageError(
    `unknown option ${name}${guess === undefined ? '' : `; did you mean --${guess}?`}`,
  );
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`offload-service: ${error.message}\n\n${USAGE}`);
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
