import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogLevel } from './config.js';

/** Paths never written to the logs. */
export const REDACTED = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'apiKey',
  '*.apiKey',
];

export interface LoggerOptions {
  level: LogLevel;
  /**
   * Human-readable lines (`true`) or JSON lines (`false`, one object a line, for log collectors).
   * Default: human-readable when stdout is a terminal (`isTTY`), JSON otherwise.
   */
  pretty?: boolean | undefined;
  /** Whether stdout is a terminal. Default: `process.stdout.isTTY`. */
  isTTY?: boolean | undefined;
  /** Where the lines go. Default: stdout, written synchronously. */
  destination?: DestinationStream | undefined;
}

/** The service's pino logger: JSON lines for machines, pretty lines for a person at a terminal. */
export function createLogger({
  level,
  isTTY = process.stdout.isTTY === true,
  pretty = isTTY,
  // Synchronous writes to stdout. pino's default (asynchronous) destination flushes at exit in a
  // loop that retries every error every 100 ms: with stdout gone (the log reader died), EPIPE
  // forever, and the process never exits after SIGTERM. A synchronous write meets the EPIPE at
  // once, and pino stops logging instead; it also keeps the last lines before a crash.
  destination = pino.destination({ dest: 1, sync: true }),
}: LoggerOptions): PinoLogger {
  const options = { name: 'offload', level, redact: { paths: REDACTED, censor: '[redacted]' } };
  if (!pretty) return pino(options, destination);
  // Formatted here, line by line, and written as the JSON lines would be: no worker thread
  // (pino's transports) whose lines a crash or an exit could leave unwritten.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  const format = prettyFactory({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return pino(options, { write: (line: string) => destination.write(format(line)) });
}
