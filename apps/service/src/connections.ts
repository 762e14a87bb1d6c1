import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { SECOND } from 'offload';

/**
 * Descriptors kept for the process's own use when the default `MAX_CONNECTIONS` is derived from
 * the open-file limit: a fifth of the limit, at least this many, at most half of it. An idle
 * service holds about 35 (Node, its threads, the SQLite files, the logs); delivery calls open one
 * socket each, up to the concurrency, a PostgreSQL pool DATABASE_POOL_SIZE more, and the SQLite
 * checkpoint thread opens the store's files again when it starts.
 */
const MIN_RESERVE = 128;
/** The fewest descriptors an explicit `MAX_CONNECTIONS` must leave to the process. */
export const MIN_SPARE_FILES = 64;
/** The default `MAX_CONNECTIONS` where the open-file limit cannot be read (not Linux). */
export const FALLBACK_MAX_CONNECTIONS = 1000;

/** From this share of `MAX_CONNECTIONS`, idle connections are closed sooner... */
const PRESSURE_SHARE = 0.8;
/** ...until the connections are back under this share. */
const RELIEF_SHARE = 0.6;
/** Under pressure: how long a kept-alive connection may wait for its next request. */
const PRESSURE_KEEP_ALIVE = 1 * SECOND;
/** Under pressure: how long a new connection may send nothing before it is closed. */
const SILENT_LIMIT = 1 * SECOND;
/** Under pressure: how often the connections that send nothing are looked for. */
const SWEEP_INTERVAL = SECOND / 4;

/**
 * The soft limit on open files of this process (`ulimit -n`, which Node raises to the hard limit
 * when it starts), from /proc/self/limits; undefined where that cannot be read or says unlimited.
 */
export function openFileLimit(limits = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limits, 'utf8');
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/** The default `MAX_CONNECTIONS` under an open-file limit of `fileLimit` (see MIN_RESERVE). */
export function defaultMaxConnections(fileLimit: number | undefined): number {
  if (fileLimit === undefined) return FALLBACK_MAX_CONNECTIONS;
  const reserve = Math.min(Math.max(MIN_RESERVE, Math.ceil(fileLimit / 5)), fileLimit / 2);
  return Math.max(1, Math.floor(fileLimit - reserve));
}

export interface ConnectionLimitOptions {
  /** Connections held at once; Node closes those over it as they are accepted. */
  max: number;
  logger: FastifyBaseLogger;
  /** Under pressure, how long (ms) a new connection may send nothing; default 1 s. */
  silentLimit?: number;
  /** Under pressure, how often (ms) connections that send nothing are looked for; default 250. */
  sweepInterval?: number;
}

/**
 * Holds at most `max` client connections on `server`, so that a flood of connections cannot use
 * up the process's file descriptors: past the limit, accept() fails with EMFILE, new clients wait
 * until the flood's connections time out, and the store, the logs and outgoing calls cannot open
 * files either. Node closes a connection over `max` as soon as it is accepted ('drop').
 *
 * From 80% of `max`, connections are under pressure until they are back under 60%: a kept-alive
 * connection is closed after 1 s without a request instead of Fastify's 72 s (Keep-Alive:
 * timeout=1 tells clients so), and one that has sent nothing for a second is closed. A connection
 * in the middle of a request is left alone; one that sends partial headers and stops is closed by
 * the request timeout, as always.
 *
 * Returns a function that stops the watch (for when the server closes).
 */
export function limitConnections(
  server: Server,
  {
    max,
    logger,
    silentLimit = SILENT_LIMIT,
    sweepInterval = SWEEP_INTERVAL,
  }: ConnectionLimitOptions,
): () => void {
  server.maxConnections = max;
  const high = Math.max(1, Math.ceil(max * PRESSURE_SHARE));
  const low = Math.floor(max * RELIEF_SHARE);
  /** Open connections and when each was accepted (ms), oldest first. */
  const opened = new Map<Socket, number>();
  let sweep: NodeJS.Timeout | undefined;
  let keepAlive = server.keepAliveTimeout;
  let dropped = 0;
  let silent = 0;

  const closeSilent = () => {
    const before = performance.now() - silentLimit;
    for (const [socket, at] of opened) {
      if (at > before) break;
      if (socket.bytesRead === 0 && !socket.destroyed) {
        socket.destroy();
        silent += 1;
      }
    }
  };
  const relieve = () => {
    clearInterval(sweep);
    sweep = undefined;
    server.keepAliveTimeout = keepAlive;
    logger.info(
      { connections: opened.size, maxConnections: max, dropped, closedSilent: silent },
      `connections are back under ${RELIEF_SHARE * 100}% of MAX_CONNECTIONS; idle connections are kept as usual`,
    );
  };
  const pressure = () => {
    dropped = 0;
    silent = 0;
    keepAlive = server.keepAliveTimeout;
    // 0 keeps idle connections without end.
    if (keepAlive === 0 || keepAlive > PRESSURE_KEEP_ALIVE) {
      server.keepAliveTimeout = PRESSURE_KEEP_ALIVE;
    }
    // Connections waiting for their next request have Node's keep-alive timer running (the
    // timeout and a margin; during a request it is off): they get the shorter one from now, so
    // that a client about to send on one is not cut off at once.
    for (const socket of opened.keys()) {
      if (keepAlive > 0 && (socket.timeout ?? 0) >= keepAlive) {
        socket.setTimeout(server.keepAliveTimeout);
      }
    }
    sweep = setInterval(closeSilent, sweepInterval).unref();
    logger.warn(
      { connections: opened.size, maxConnections: max },
      `connections reached ${PRESSURE_SHARE * 100}% of MAX_CONNECTIONS: those idle for ${server.keepAliveTimeout} ms between requests are closed, and those that send nothing for ${silentLimit} ms; over ${max}, new ones are refused`,
    );
  };

  const onDrop = () => {
    dropped += 1;
  };
  const onConnection = (socket: Socket) => {
    opened.set(socket, performance.now());
    socket.once('close', () => {
      opened.delete(socket);
      if (sweep !== undefined && opened.size < low) relieve();
    });
    if (sweep === undefined && opened.size >= high) pressure();
  };
  server.on('drop', onDrop);
  server.on('connection', onConnection);
  return () => {
    clearInterval(sweep);
    sweep = undefined;
    server.off('drop', onDrop);
    server.off('connection', onConnection);
  };
}
