/**
 * `offload/next` on the shared table. Next itself is not started here: a route handler is a
 * function from a Request to a Response, so the harness serves the wrapped handlers through
 * @hono/node-server's Request/Response bridge, and does what Next does around a route handler:
 * a route that throws is answered 500 (or the status its error carries, as the table asks), a
 * path with no route 404.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import { createRuntime, memoryStore } from '../../src/index.js';
import { accepted, withBackground } from '../../src/next/index.js';
import { captureLogger } from '../helpers.js';
import { listening, thrown } from './servers.js';
import { adapterTable, record, type Route } from './table.js';

type Handler = (request: Request, context: unknown) => Promise<Response>;

/** Serves `handlers` by path, as Next would answer around them. */
async function served(handlers: Record<string, Handler>) {
  const fetch = async (request: Request): Promise<Response> => {
    const handler = handlers[new URL(request.url).pathname];
    if (!handler) return new Response('not found', { status: 404 });
    try {
      return await handler(request, { params: Promise.resolve({}) });
    } catch (error) {
      const status = (error as { status?: number }).status ?? 500;
      return Response.json({ message: (error as Error).message }, { status });
    }
  };
  const server = await new Promise<Server>((resolve) => {
    const made = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(made as Server));
  });
  return listening(server);
}

function handlerOf(route: Route): Parameters<typeof withBackground>[1] {
  return async (_request, background) => {
    const reply = await route(background);
    if ('throws' in reply) throw thrown(reply, 'status');
    if ('accepted' in reply) return accepted(reply.accepted);
    return Response.json(reply.json, { status: reply.status });
  };
}

adapterTable({
  name: 'offload/next',
  stopsWithServer: false,
  seesEveryRequest: false,
  serve: ({ runtime, start, routes }) =>
    served(
      Object.fromEntries(
        Object.entries(routes).map(([path, route]) => [
          path,
          withBackground(runtime, handlerOf(route), { start }),
        ]),
      ),
    ),
});

describe('offload/next', () => {
  it('starts nothing when the route module is loaded, only at the first request', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    let starts = 0;
    const start = runtime.start.bind(runtime);
    runtime.start = () => {
      starts += 1;
      return start();
    };
    const POST = withBackground(runtime, async (_request, background) => {
      background.add(record, { n: 1 });
      return Response.json({ ok: true });
    });
    assert.equal(starts, 0);
    const response = await POST(new Request('http://localhost/', { method: 'POST' }), {});
    assert.equal(response.status, 200);
    assert.equal(starts, 1);
    await POST(new Request('http://localhost/', { method: 'POST' }), {});
    assert.equal(starts, 1);
    assert.equal((await runtime.list()).tasks.length, 2);
    await runtime.stop();
  });

  it('answers 503 with the envelope for a commit() that failed, and rethrows other errors to Next', async () => {
    const store = memoryStore();
    store.enqueue = () => Promise.reject(new Error('disk full'));
    const runtime = createRuntime({ store, tasks: [record], logger: captureLogger() });
    const early = withBackground(
      runtime,
      async (_request, background) => {
        background.add(record, { n: 1 });
        await background.commit();
        return Response.json({ ok: true });
      },
      { start: false },
    );
    const response = await early(new Request('http://localhost/', { method: 'POST' }), {});
    assert.equal(response.status, 503);
    assert.equal(((await response.json()) as { ok: boolean }).ok, false);
    const failing = withBackground(
      runtime,
      async () => {
        throw new Error('NEXT_NOT_FOUND');
      },
      { start: false },
    );
    await assert.rejects(failing(new Request('http://localhost/'), {}), /NEXT_NOT_FOUND/);
    await runtime.stop();
  });

  it('refuses a typo in its options, naming the field', () => {
    const runtime = createRuntime({ store: memoryStore(), logger: captureLogger() });
    assert.throws(
      () => withBackground(runtime, async () => Response.json({}), { strat: false } as never),
      /offload\/next options/,
    );
  });
});
