import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { accepted, offload } from '../../src/hono/index.js';
import { createRuntime, memoryStore } from '../../src/index.js';
import { captureLogger } from '../helpers.js';
import { listening, thrown } from './servers.js';
import { adapterTable, record } from './table.js';

/** `app` on @hono/node-server, on a free port of 127.0.0.1. */
async function served(app: Hono) {
  const server = await new Promise<Server>((resolve) => {
    const made = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
      resolve(made as Server),
    );
  });
  assert.ok((server.address() as AddressInfo).port > 0);
  return listening(server);
}

adapterTable({
  name: 'offload/hono',
  serve: ({ runtime, start, routes }) => {
    const app = new Hono();
    app.use(offload({ runtime, start }));
    for (const [path, route] of Object.entries(routes)) {
      app.all(path, async (c) => {
        const reply = await route(c.get('background'));
        if ('throws' in reply) {
          if (reply.throws === 'error') throw thrown(reply, 'status');
          throw new HTTPException(reply.status as 422, { message: 'refused' });
        }
        if ('accepted' in reply) return accepted(c, reply.accepted);
        return c.json(reply.json, reply.status as 200);
      });
    }
    return served(app);
  },
});

describe('offload/hono', () => {
  it('stores nothing for a request whose error the app’s onError answers', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = new Hono();
    app.use(offload({ runtime, start: false }));
    app.onError((error, c) => c.json({ message: error.message }, 418));
    app.post('/', (c) => {
      c.get('background').add(record, { n: 1 });
      throw new Error('refused');
    });
    const server = await served(app);
    try {
      const response = await fetch(server.url, { method: 'POST' });
      assert.equal(response.status, 418);
      assert.deepEqual(await response.json(), { message: 'refused' });
      assert.equal((await runtime.list()).tasks.length, 0);
    } finally {
      await server.close();
      await runtime.stop();
    }
  });

  it('keeps none of the handler’s headers in a 503', async () => {
    const store = memoryStore();
    store.enqueue = () => Promise.reject(new Error('disk full'));
    const runtime = createRuntime({ store, tasks: [record], logger: captureLogger() });
    const app = new Hono();
    app.use(offload({ runtime, start: false }));
    app.post('/', (c) => {
      c.get('background').add(record, { n: 1 });
      c.header('set-cookie', 'session=1');
      return c.json({ ok: true });
    });
    const response = await app.request('/', { method: 'POST' });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('set-cookie'), null);
    assert.equal(((await response.json()) as { ok: boolean }).ok, false);
    await runtime.stop();
  });
});
