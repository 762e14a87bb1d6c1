/**
 * One table of behaviours that every adapter keeps (offload/node, /express, /hono, /fastify),
 * run over a real HTTP socket on 127.0.0.1. Each framework's test file gives a `Harness` that
 * turns the table's routes into its own idiom; the table asserts only what a client and the
 * store see.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import type { Background } from '../../src/adapters/background.js';
import {
  createRuntime,
  defineTask,
  memoryStore,
  type Runtime,
  type Store,
  type Task,
} from '../../src/index.js';
import { kAnsweredRequest } from '../../src/runtime/runtime.js';
import { barrier, captureLogger, nextEvent } from '../helpers.js';
import { registerTestTracing } from '../tracing.js';

/** What a route of the table answers, which each harness writes in its framework's idiom. */
export type Reply =
  /** The handler answers this itself. */
  | { status: number; json: unknown }
  /** The adapter's `accepted` helper, for a task `commit()` returned. */
  | { accepted: Task }
  /** The handler throws a plain `Error`. */
  | { throws: 'error' }
  /** The handler throws the framework's own error that carries an HTTP status. */
  | { throws: 'status'; status: number };

export type Route = (background: Background) => Promise<Reply>;

export interface Served {
  url: string;
  /** The node:http server that received the connections. */
  server: Server;
  close(): Promise<void>;
}

export interface Harness {
  name: string;
  /**
   * False for an adapter that cannot see the server close (offload/next: Next gives route
   * handlers no such hook), whose row about it is skipped.
   */
  stopsWithServer?: boolean;
  /**
   * False for an adapter that sees only the requests of its own routes (offload/next wraps one
   * route handler): a request to no route is not counted.
   */
  seesEveryRequest?: boolean;
  /** Serves `routes` (any method, by path; others answer 404) with the adapter on `runtime`. */
  serve(options: {
    runtime: Runtime;
    start: boolean;
    routes: Record<string, Route>;
  }): Promise<Served>;
}

const seen: unknown[] = [];
export const record = defineTask<{ n: number }>({
  name: 'record',
  run: (payload) => void seen.push(payload),
});

const ok: Reply = { status: 200, json: { ok: true } };

/** Runs the table against `harness`. */
export function adapterTable(harness: Harness): void {
  const opened: { served: Served; runtime: Runtime }[] = [];
  afterEach(async () => {
    for (const { served, runtime } of opened.splice(0)) {
      await served.close();
      await runtime.stop();
    }
  });

  /**
   * A server with the adapter on a fresh runtime, and `order`: what the store stored and the
   * socket wrote, in the order it happened.
   */
  async function serve(
    routes: Record<string, Route>,
    options: { start?: boolean; store?: Store } = {},
  ) {
    seen.length = 0;
    const order: string[] = [];
    const store = options.store ?? memoryStore();
    const enqueue = store.enqueue.bind(store);
    store.enqueue = async (...args) => {
      const results = await enqueue(...args);
      for (const _ of results) order.push('stored');
      return results;
    };
    const storeClosed = barrier();
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      storeClosed.open();
    };
    const runtime = createRuntime({
      store,
      tasks: [record],
      logger: captureLogger(),
      shutdownGrace: 0,
    });
    const served = await harness.serve({ runtime, start: options.start ?? false, routes });
    opened.push({ served, runtime });
    served.server.on('connection', (socket: Socket) => {
      const write = socket.write;
      socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
        if (order.at(-1) !== 'written') order.push('written');
        return write.apply(this, args);
      } as Socket['write'];
    });
    const send = (path: string) => fetch(`${served.url}${path}`, { method: 'POST' });
    const stored = async () => (await runtime.list()).tasks.length;
    return { runtime, served, order, send, stored, storeClosed: storeClosed.promise };
  }

  describe(`${harness.name}: the adapter table`, () => {
    it('stores the tasks a handler adds before any byte of the response is written', async () => {
      const { runtime, order, send } = await serve({
        '/two': async (background) => {
          background.add(record, { n: 1 });
          background.add(record, { n: 2 });
          assert.equal(background.size, 2);
          return ok;
        },
      });
      const response = await send('/two');
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { ok: true });
      assert.deepEqual(order.slice(0, 3), ['stored', 'stored', 'written']);
      await runtime.drain();
      assert.deepEqual(seen, [{ n: 1 }, { n: 2 }]);
    });

    it('stores nothing when the handler throws, or throws an error with a status', async () => {
      const { runtime, send, stored } = await serve({
        '/throws': async (background) => {
          background.add(record, { n: 1 });
          return { throws: 'error' };
        },
        '/status': async (background) => {
          background.add(record, { n: 2 });
          return { throws: 'status', status: 422 };
        },
      });
      assert.equal((await send('/throws')).status, 500);
      assert.equal((await send('/status')).status, 422);
      assert.equal(await stored(), 0);
      await runtime.drain();
      assert.deepEqual(seen, []);
    });

    it('stores the tasks of an answer the handler gives itself, whatever its status', async () => {
      const { send, stored } = await serve({
        '/refused': async (background) => {
          background.add(record, { n: 1 });
          return { status: 400, json: { ok: false } };
        },
      });
      assert.equal((await send('/refused')).status, 400);
      assert.equal(await stored(), 1);
    });

    it('answers 503 with the error envelope, never ok, when the store cannot take the tasks', async () => {
      const store = memoryStore();
      store.enqueue = () => Promise.reject(new Error('disk full'));
      const { runtime, send } = await serve(
        {
          '/late': async (background) => {
            background.add(record, { n: 1 });
            return ok;
          },
          '/early': async (background) => {
            background.add(record, { n: 2 });
            await background.commit();
            return ok;
          },
        },
        { store },
      );
      for (const path of ['/late', '/early']) {
        const response = await send(path);
        assert.equal(response.status, 503, path);
        const body = (await response.json()) as { ok: boolean; error: Record<string, string> };
        assert.deepEqual(Object.keys(body), ['ok', 'error'], path);
        assert.equal(body.ok, false);
        assert.equal(body.error.code, 'STORE_UNAVAILABLE', path);
        assert.match(body.error.message!, /disk full/, path);
      }
      await runtime.drain();
      assert.deepEqual(seen, []);
    });

    it('commits early on request, and answers 202 with the Location of the task', async () => {
      const { runtime, send, stored } = await serve({
        '/report': async (background) => {
          background.add(record, { n: 7 });
          const [task] = await background.commit();
          assert.equal(background.size, 0);
          return { accepted: task! };
        },
      });
      const response = await send('/report');
      assert.equal(response.status, 202);
      const { ok: answered, id } = (await response.json()) as { ok: boolean; id: string };
      assert.equal(answered, true);
      assert.equal(response.headers.get('location'), `/api/tasks/${id}`);
      assert.equal((await runtime.get(id))?.state, 'queued');
      assert.equal(await stored(), 1, 'committing early does not store the task twice');
    });

    it('stores several tasks all or none, and answers 500 for a payload that is not JSON', async () => {
      const { send, stored } = await serve({
        '/bad': async (background) => {
          background.add(record, { n: 1 });
          background.add(record, { n: new Date(0) as unknown as number });
          return ok;
        },
      });
      assert.equal((await send('/bad')).status, 500);
      assert.equal(await stored(), 0);
    });

    it("continues the request's traceparent header in the tasks it stores", async () => {
      const { runtime, served } = await serve({
        '/traced': async (background) => {
          background.add(record, { n: 1 });
          return ok;
        },
      });
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      const tracing = registerTestTracing();
      try {
        for (const traceparent of [`00-${traceId}-b7ad6b7169203331-01`, 'not-a-traceparent']) {
          const response = await fetch(`${served.url}/traced`, {
            method: 'POST',
            headers: { traceparent },
          });
          assert.equal(response.status, 200);
        }
      } finally {
        await tracing.close();
      }
      // The enqueue's span continues the header's trace; a malformed header is ignored.
      const [malformed, continued] = (await runtime.list()).tasks.map((task) => task.trace);
      assert.match(continued!, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      assert.match(malformed!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      assert.ok(!malformed!.includes(traceId));
    });

    it('refuses tasks added after the response was sent', async () => {
      const kept = barrier<Background>();
      const { send } = await serve({
        '/': async (background) => {
          kept.open(background);
          return ok;
        },
      });
      assert.equal((await send('/')).status, 200);
      const background = await kept.promise;
      assert.throws(() => background.add(record, { n: 1 }), {
        code: 'BACKGROUND_CLOSED',
        message: /after the response was sent/,
      });
    });

    it(
      'starts the runtime, runs tasks after answering, and stops the runtime with the server',
      { skip: harness.stopsWithServer === false && 'the adapter cannot see the server close' },
      async () => {
        const { runtime, served, send, storeClosed } = await serve(
          {
            '/': async (background) => {
              background.add(record, { n: 3 });
              return ok;
            },
          },
          { start: true },
        );
        const succeeded = nextEvent(runtime, 'task:success');
        assert.equal((await send('/')).status, 200);
        await succeeded;
        assert.deepEqual(seen, [{ n: 3 }]);
        await served.close();
        await storeClosed;
        await assert.rejects(runtime.enqueue(record, { n: 4 }), { code: 'RUNTIME_STOPPED' });
      },
    );

    it('starts a task only once its response has been written', async () => {
      const { runtime, order, send } = await serve(
        {
          '/': async (background) => {
            background.add(record, { n: 1 });
            return ok;
          },
        },
        { start: true },
      );
      runtime.on('task:start', () => void order.push('started'));
      const succeeded = nextEvent(runtime, 'task:success');
      await (await send('/')).text();
      await succeeded;
      assert.deepEqual(order, ['stored', 'written', 'started']);
    });

    it('tells the runtime of every request it answers, so that a draining backlog shares the loop', async () => {
      let answered = 0;
      const store = memoryStore();
      const runtime = createRuntime({ store, tasks: [record], logger: captureLogger() });
      Object.defineProperty(runtime, kAnsweredRequest, { value: () => void (answered += 1) });
      const served = await harness.serve({
        runtime,
        start: false,
        routes: {
          '/task': async (background) => {
            background.add(record, { n: 1 });
            return ok;
          },
          '/plain': async () => ok,
          '/fails': async () => ({ throws: 'error' }),
        },
      });
      opened.push({ served, runtime });
      for (const [path, status] of [
        ['/task', 200],
        ['/plain', 200],
        ['/fails', 500],
        ['/missing', 404],
      ] as const) {
        const response = await fetch(`${served.url}${path}`, { method: 'POST' });
        assert.equal(response.status, status, path);
        await response.arrayBuffer();
      }
      assert.equal(answered, harness.seesEveryRequest === false ? 3 : 4);
    });
  });
}
