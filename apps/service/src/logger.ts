import { createRequire } from 'node:module';
import { pino, type Logger as PinoLogger } from 'pino';
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
  /** Human-readable lines; default: when stdout is a terminal and pino-pretty is installed. */
  pretty?: boolean;
}

/** The service's pino logger: JSON lines for machines, pretty lines for a person at a terminal. */
export function createLogger({
  level,
  pretty = process.stdout.isTTY === true && hasPinoPretty(),
}: LoggerOptions): PinoLogger {
  const options = { name: 'offload', level, redact: { paths: REDACTED, censor: '[redacted]' } };
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  // Synchronous writes to stdout. pino's default (asynchronous) destination flushes at exit in a
  // loop that retries every error every 100 ms: with stdout gone (the log reader died), EPIPE
  // forever, and the process never exits after SIGTERM. A synchronous write meets the EPIPE at
  // once, and pino stops logging instead; it also keeps the last lines before a crash.
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

/** pino-pretty is a development dependency: production installs go without it. */
function hasPinoPretty(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
