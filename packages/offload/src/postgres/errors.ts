import { StoreUnavailableError, type StoreUnavailableReason } from '../errors/store-unavailable.js';

type Fault = [reason: StoreUnavailableReason, hint: string];

const UNREACHABLE: Fault = [
  'unreachable',
  'the database server cannot be reached: check that it is up and reachable',
];
const CONNECTION_FAILED: Fault = [
  'unreachable',
  'the connection to PostgreSQL failed: check that the server is up and reachable',
];

/** Node's network errors, which node-postgres passes on, for a server that cannot be reached. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Classes of PostgreSQL's SQLSTATE codes (and their starts) for a server that is away or full. */
const SQLSTATE_FAULTS: [prefix: string, fault: Fault][] = [
  ['08', CONNECTION_FAILED],
  [
    '57P0',
    ['shutting-down', 'PostgreSQL is shutting down or restarting: check the database server'],
  ],
  [
    '53',
    [
      'out-of-resources',
      'PostgreSQL is out of a resource (disk, memory or connections): check the database server',
    ],
  ],
];

/**
 * node-postgres's own errors, which carry no code, for a connection that broke, or that could not
 * be had in time (from the server, or from a pool whose connections are all in use).
 */
const UNCODED_FAULTS: [message: string, fault: Fault][] = [
  ['Connection terminated unexpectedly', CONNECTION_FAILED],
  ['Client has encountered a connection error and is not queryable', CONNECTION_FAILED],
  [
    'timeout exceeded when trying to connect',
    [
      'timed-out',
      'no connection to PostgreSQL could be had in time: check that the server is up and reachable, and that poolSize suits the load',
    ],
  ],
  [
    'Connection terminated due to connection timeout',
    [
      'timed-out',
      'the connection to PostgreSQL was not made in time: check that the server is up and reachable',
    ],
  ],
];

/**
 * `error` as the PostgreSQL store throws it: an error of node-postgres that means the database
 * cannot serve now (the server away, shutting down or out of a resource, the connection broken)
 * becomes a `StoreUnavailableError`, with the driver's error as its cause and its code as
 * `driverCode`; any other error (a bug, a bad request) is returned as it is.
 */
export function postgresStoreError(error: unknown): unknown {
  if (error instanceof StoreUnavailableError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const fault = typeof code === 'string' ? codedFault(code) : uncodedFault(error.message);
  if (fault === undefined) return error;
  const [reason, hint] = fault;
  return new StoreUnavailableError(error.message, {
    reason,
    hint,
    driverCode: typeof code === 'string' ? code : null,
    cause: error,
  });
}

function codedFault(code: string): Fault | undefined {
  if (NETWORK_CODES.has(code)) return UNREACHABLE;
  if (!/^[0-9A-Z]{5}$/.test(code)) return undefined;
  return SQLSTATE_FAULTS.find(([prefix]) => code.startsWith(prefix))?.[1];
}

function uncodedFault(message: string): Fault | undefined {
  return UNCODED_FAULTS.find(([known]) => message === known)?.[1];
}
