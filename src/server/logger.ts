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
  return pino({
    name: 'offload',
    level,
    redact: { paths: REDACTED, censor: '[redacted]' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  });
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
