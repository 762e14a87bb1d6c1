import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { gracefulClose } from '../../src/drain.js';

/** GET `url` through `agent`: the status, headers, and whether a kept-alive socket was reused. */
function get(agent: Agent, url: string) {
  return new Promise<{ status: number; headers: IncomingHttpHeaders; reused: boolean }>(
    (resolve, reject) => {
      const req = request(url, { agent }, (response) => {
        response.resume();
        response.on('end', () =>
          resolve({
            status: response.statusCode!,
            headers: response.headers,
            reused: req.reusedSocket,
          }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('graceful close (drain.ts)', () => {
  it('answers requests on open connections with Connection: close while draining, then refuses new ones', async () => {
    const app = Fastify();
    app.get('/', async () => ({ ok: true }));
    const close = gracefulClose(app, 2_000);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = await get(agent, url);
      assert.equal(before.status, 200);
      assert.equal(before.headers.connection, 'keep-alive');

      const closed = close();
      const during = await get(agent, url);
      assert.equal(during.status, 200);
      assert.equal(during.reused, true, 'the kept-alive connection still brought the request');
      assert.equal(during.headers.connection, 'close');

      // The server closed that connection after its answer, so the close need not wait out the
      // window for it.
      await closed;
      await assert.rejects(get(agent, url), { code: 'ECONNREFUSED' });
    } finally {
      agent.destroy();
      await app.close();
    }
  });

  it('closes when a client goes away in the middle of a request while draining', async () => {
    const app = Fastify();
    app.post('/', async () => ({ ok: true }));
    const close = gracefulClose(app, 2_000);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      const arrived = once(app.server, 'request');
      socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n');
      socket.write('Content-Length: 100\r\n\r\n{"cut":');
      await arrived;
      const closed = close();
      // The request ends short of its length: the server's side of the connection fails.
      socket.end();
      await closed;
    } finally {
      socket.destroy();
      await app.close();
    }
  });

  it('closes connections that have sent nothing once the window has passed', async () => {
    const app = Fastify();
    app.get('/', async () => ({ ok: true }));
    const close = gracefulClose(app, 200);
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const accepted = once(app.server, 'connection');
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    try {
      await accepted;
      const began = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        close().then(() => 'closed'),
        new Promise((resolve) => (timer = setTimeout(() => resolve('still open'), 3000))),
      ]);
      clearTimeout(timer);
      assert.equal(result, 'closed');
      assert.ok(performance.now() - began >= 190, 'closed before the window passed');
    } finally {
      socket.destroy();
      await app.close();
    }
  });
});
