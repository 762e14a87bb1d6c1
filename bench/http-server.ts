/**
 * One HTTP server of bench/http.ts, run in a process of its own (the parent pins it to a core).
 *
 *   node --conditions=source --import tsx bench/http-server.ts --kind=bare       bare Fastify, no work (the ceiling)
 *   node --conditions=source --import tsx bench/http-server.ts --kind=insert     bare Fastify and one row per request in
 *                                                            Offload's table (DATABASE_URL), each
 *                                                            request its own transaction
 *   node --conditions=source --import tsx bench/http-server.ts --kind=batched    the same, the rows of one event-loop
 *                                                            turn in one transaction (a plain
 *                                                            durable design on this stack)
 *   node --conditions=source --import tsx bench/http-server.ts --kind=service    Offload's service as built in dist/
 *                                                            (`npm run build`), configured from the
 *                                                            environment (DATABASE_URL, LOG_LEVEL, …)
 *
 * It must be started with an IPC channel. It listens on 127.0.0.1 on a free port and sends
 * `{ type: 'ready', url }`. It answers `{ type: 'stats' }` with its CPU time, the tasks that
 * succeeded by name, when the backlog (`--backlog=N` tasks named `notifications.log`) was drained,
 * and the event-loop delay since the previous `stats` (then resets it). On `{ type: 'stop' }`,
 * SIGTERM or a lost parent it closes and exits 0, so that `--cpu-prof` writes its profile.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import type * as ConfigModule from '../apps/service/src/config.js';
import type * as LoggerModule from '../apps/service/src/logger.js';
import type * as ServiceModule from '../apps/service/src/service.js';
import type * as BatcherModule from '../packages/offload/src/runtime/batcher.js';
import type * as IndexModule from '../packages/offload/src/index.js';
import type * as SqliteModule from '../packages/offload/src/sqlite/index.js';

// The service as users run it: the build in dist/ (bench/http.ts builds it first), not the
// TypeScript sources through tsx, whose transform adds work of its own to the code it runs.
const dist = (module: string) => new URL(`../${module}.js`, import.meta.url).href;
const { loadConfig } = (await import(dist('apps/service/dist/config'))) as typeof ConfigModule;
const { createLogger } = (await import(dist('apps/service/dist/logger'))) as typeof LoggerModule;
const { createService } = (await import(dist('apps/service/dist/service'))) as typeof ServiceModule;
const { Batcher } = (await import(
  dist('packages/offload/dist/runtime/batcher')
)) as typeof BatcherModule;
const { openStore } = (await import(dist('packages/offload/dist/index'))) as typeof IndexModule;
const { SqliteStore } = (await import(
  dist('packages/offload/dist/sqlite/index')
)) as typeof SqliteModule;

const ANSWER = { ok: true, message: 'Notification scheduled in background' } as const;
const NOTIFY_PATH = '/api/notifications/notify';

export interface ServerStats {
  type: 'stats';
  /** process.cpuUsage(), user + system, in µs. */
  cpuMicros: number;
  /** Tasks that succeeded in this process, by task name. */
  succeeded: Record<string, number>;
  /** Date.now() when `--backlog` log tasks had all succeeded; null if not (yet). */
  backlogDoneAt: number | null;
  /** Event-loop delay since the previous stats message, ms. */
  loopDelay: { p50: number; p99: number; max: number };
  rss: number;
}

type Message = { type: 'stats' } | { type: 'stop' };

const kind = /^--kind=(bare|insert|batched|service)$/.exec(process.argv[2] ?? '')?.[1];
const backlog = Number(/^--backlog=(\d+)$/.exec(process.argv[3] ?? '')?.[1] ?? 0);
if (!kind || !process.send) {
  process.stderr.write(
    'usage: (with IPC) http-server.ts --kind=bare|insert|batched|service [--backlog=N]\n',
  );
  process.exit(2);
}

const succeeded: Record<string, number> = {};
let backlogDoneAt: number | null = null;
let close: () => Promise<void>;
let url: string;

if (kind === 'bare') {
  const app = Fastify();
  app.post(NOTIFY_PATH, async () => ANSWER);
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  close = () => app.close();
} else if (kind === 'insert' || kind === 'batched') {
  ({ url, close } = await startInsertServer(kind === 'batched'));
} else {
  const config = loadConfig({ ...process.env, PORT: '0', HOST: '127.0.0.1' });
  const logger = createLogger({ level: config.logLevel, pretty: false });
  const service = await createService(config, { logger });
  service.runtime.on('task:success', ({ task }) => {
    const count = (succeeded[task.name] ?? 0) + 1;
    succeeded[task.name] = count;
    if (task.name === 'notifications.log' && count === backlog) backlogDoneAt = Date.now();
  });
  url = await service.listen();
  close = () => service.close();
}

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 20_000).unref();
  close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`http-server: close failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}

process.on('message', (message: Message) => {
  if (message.type === 'stop') return stop();
  const usage = process.cpuUsage();
  const stats: ServerStats = {
    type: 'stats',
    cpuMicros: usage.user + usage.system,
    succeeded: { ...succeeded },
    backlogDoneAt,
    loopDelay: {
      p50: loop.percentile(50) / 1e6,
      p99: loop.percentile(99) / 1e6,
      max: loop.max / 1e6,
    },
    rss: process.memoryUsage.rss(),
  };
  loop.reset();
  process.send!(stats);
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.send({ type: 'ready', url });

/**
 * Bare Fastify that stores one row a request in Offload's own table and answers once the row is
 * committed: what a plain durable design costs on this stack, without a runtime, validation, hooks
 * or logging. `batched`: the rows of one event-loop turn share a transaction, grouped by the
 * runtime's own `Batcher`.
 */
async function startInsertServer(
  batched: boolean,
): Promise<{ url: string; close: () => Promise<void> }> {
  const made = await openStore(process.env.DATABASE_URL ?? '');
  if (!(made instanceof SqliteStore))
    throw new Error('--kind=insert and batched need DATABASE_URL=sqlite:PATH');
  // The store makes the file as it always does (schema, WAL), then this process writes on a
  // connection of its own, with the store's synchronous setting.
  await made.open();
  await made.close();
  const db = new Database(made.path);
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare<[number, number]>(
    `INSERT INTO offload_tasks (name, payload, state, max_attempts, run_at, created_at)
     VALUES ('notifications.demo', '{}', 'queued', 5, ?, ?)`,
  );
  const store = (): string => {
    const now = Date.now();
    return String(insert.run(now, now).lastInsertRowid);
  };
  const commit = db.transaction((count: number) => Array.from({ length: count }, store));
  const batcher = new Batcher<null, string>(async (items) => commit(items.length));
  const stored = batched
    ? () => new Promise<string>((resolve, reject) => batcher.add(null, resolve, reject))
    : async () => store();
  const app = Fastify();
  app.post(NOTIFY_PATH, async () => ({ ...ANSWER, id: await stored() }));
  return {
    url: await app.listen({ port: 0, host: '127.0.0.1' }),
    close: async () => {
      await app.close();
      db.close();
    },
  };
}
