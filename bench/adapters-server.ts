/**
 * One server of bench/adapters.ts, run in a process of its own: a framework answering
 * `POST /api/notifications/notify` with `{"ok":true}` after scheduling one task on a SQLite store
 * (DATABASE_PATH), either through Offload's adapter (`request.background.add`) or written by hand
 * (`await runtime.enqueue` before answering, no adapter). Both start the runtime, so the tasks run
 * in this process as they would in an app.
 *
 *   node --conditions=source --import tsx bench/adapters-server.ts --framework=node|express|hono|fastify --variant=adapter|manual|unhinted
 *
 * It must be started with an IPC channel: it listens on 127.0.0.1 on a free port and sends
 * `{ type: 'ready', url }`; it answers `{ type: 'stats' }` with its CPU time, the requests routed
 * and the tasks succeeded; on `{ type: 'stop' }` it closes, stops the runtime and exits 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import type * as ExpressModule from '../packages/offload/src/express/index.js';
import type * as FastifyModule from '../packages/offload/src/fastify/index.js';
import type * as HonoModule from '../packages/offload/src/hono/index.js';
import type * as IndexModule from '../packages/offload/src/index.js';
import type * as NodeModule from '../packages/offload/src/node/index.js';
import type * as RuntimeModule from '../packages/offload/src/runtime/runtime.js';
import type * as SqliteModule from '../packages/offload/src/sqlite/index.js';
import { benchLogger, parseArgs } from './lib.js';

// The library as users run it: the build in dist/ (bench/adapters.ts builds it first), not the
// TypeScript sources through tsx, whose transform adds work of its own to the code it runs.
const dist = (module: string) =>
  new URL(`../packages/offload/dist/${module}.js`, import.meta.url).href;
const { createRuntime, defineTask } = (await import(dist('index'))) as typeof IndexModule;
const { offload: expressOffload, offloadErrors } = (await import(
  dist('express/index')
)) as typeof ExpressModule;
const { offload: fastifyOffload } = (await import(dist('fastify/index'))) as typeof FastifyModule;
const { offload: honoOffload } = (await import(dist('hono/index'))) as typeof HonoModule;
const { withBackground } = (await import(dist('node/index'))) as typeof NodeModule;
const { kAnsweredRequest } = (await import(dist('runtime/runtime'))) as typeof RuntimeModule;
const { sqliteStore } = (await import(dist('sqlite/index'))) as typeof SqliteModule;

export type Framework = 'node' | 'express' | 'hono' | 'fastify';
/**
 * `adapter`: through the adapter; `manual`: by hand; `unhinted`: through the adapter on a runtime
 * that is not told of answered requests, so that its drain does not yield to them (this parts
 * what the adapter's code costs from what that yield costs).
 */
export type Variant = 'adapter' | 'manual' | 'unhinted';

const PATH = '/api/notifications/notify';
const ANSWER = { ok: true } as const;
const BODY = JSON.stringify(ANSWER);

const args = parseArgs();
const framework = args.values.get('framework') as Framework;
const variant = args.values.get('variant') as Variant;
const path = process.env.DATABASE_PATH;
if (!['node', 'express', 'hono', 'fastify'].includes(framework) || !path || !process.send) {
  process.stderr.write(
    'usage: (with IPC, DATABASE_PATH set) adapters-server.ts --framework=node|express|hono|fastify --variant=adapter|manual|unhinted\n',
  );
  process.exit(2);
}

const task = defineTask<{ n: number }>({ name: 'bench.noop', run: () => {} });
const runtime = createRuntime({
  store: sqliteStore({ path }),
  tasks: [task],
  logger: benchLogger(),
  shutdownGrace: 1000,
});
const adapter = variant !== 'manual';
if (variant === 'unhinted') Object.defineProperty(runtime, kAnsweredRequest, { value: () => {} });
if (!adapter) await runtime.start();
/** Requests that reached the route, which each schedule one task. */
let n = 0;
let succeeded = 0;
runtime.on('task:success', () => void (succeeded += 1));

/** What `{ type: 'stats' }` answers: CPU time so far (µs), requests routed, tasks succeeded. */
export interface AdapterServerStats {
  type: 'stats';
  cpuMicros: number;
  requests: number;
  succeeded: number;
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** By hand on node:http: stored, then answered; a failed store answers 503. */
async function manualNode(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url !== PATH) return sendJson(res, 404, '{}');
  try {
    await runtime.enqueue(task, { n: n++ });
  } catch {
    return sendJson(res, 503, '{"ok":false}');
  }
  sendJson(res, 200, BODY);
}

async function listen(): Promise<{ server: Server; close(): Promise<void> }> {
  switch (framework) {
    case 'node': {
      const server = createServer(
        adapter
          ? withBackground(runtime, (req, res, background) => {
              if (req.url !== PATH) return sendJson(res, 404, '{}');
              background.add(task, { n: n++ });
              sendJson(res, 200, BODY);
            })
          : (req, res) => void manualNode(req, res),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, close: () => closeServer(server) };
    }
    case 'express': {
      const app = express();
      if (adapter) {
        app.use(expressOffload({ runtime }));
        app.post(PATH, (req, res) => {
          req.background.add(task, { n: n++ });
          res.json(ANSWER);
        });
        app.use(offloadErrors());
      } else {
        app.post(PATH, async (_req, res) => {
          await runtime.enqueue(task, { n: n++ });
          res.json(ANSWER);
        });
      }
      const server = createServer(app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, close: () => closeServer(server) };
    }
    case 'hono': {
      const app = new Hono();
      if (adapter) {
        app.use(honoOffload({ runtime }));
        app.post(PATH, (c) => {
          c.get('background').add(task, { n: n++ });
          return c.json(ANSWER);
        });
      } else {
        app.post(PATH, async (c) => {
          await runtime.enqueue(task, { n: n++ });
          return c.json(ANSWER);
        });
      }
      const server = await new Promise<Server>((resolve) => {
        const made = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
          resolve(made as Server),
        );
      });
      return { server, close: () => closeServer(server) };
    }
    case 'fastify': {
      const app = Fastify();
      if (adapter) {
        await app.register(fastifyOffload, { runtime });
        app.post(PATH, async (request) => {
          request.background.add(task, { n: n++ });
          return ANSWER;
        });
      } else {
        app.post(PATH, async () => {
          await runtime.enqueue(task, { n: n++ });
          return ANSWER;
        });
      }
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { server: app.server, close: () => app.close() };
    }
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const listening = await listen();
const { port } = listening.server.address() as AddressInfo;
process.send({ type: 'ready', url: `http://127.0.0.1:${port}` });

let stopping: Promise<void> | undefined;
const stop = () =>
  (stopping ??= (async () => {
    await listening.close();
    await runtime.stop();
    process.exit(0);
  })());
process.on('message', (message: { type: string }) => {
  if (message.type === 'stop') void stop();
  if (message.type === 'stats') {
    const { user, system } = process.cpuUsage();
    const stats: AdapterServerStats = {
      type: 'stats',
      cpuMicros: user + system,
      requests: n,
      succeeded,
    };
    process.send!(stats);
  }
});
process.once('SIGTERM', () => void stop());
process.once('disconnect', () => void stop());
