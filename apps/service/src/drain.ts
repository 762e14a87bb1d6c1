import type { IncomingMessage, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SECOND } from 'offload';
import { ApiError } from './errors.js';

/** How long, at most, kept-alive connections may still bring requests after a stop begins. */
export const DRAIN_WINDOW = 1 * SECOND;

/**
 * A graceful close for the HTTP side, as Render, Heroku and Kubernetes expect on SIGTERM.
 *
 * Closing a Node server at once destroys the kept-alive connections that look idle, and one that
 * looks idle may already hold the client's next request, not yet read: that client gets a reset
 * and cannot tell whether its request was taken. So `close` first stops listening (new connections
 * are refused), keeps the open connections for up to `window` ms while every response says
 * `Connection: close` (so clients stop sending on them, and their last requests are answered),
 * closes those that have sent nothing, and only then closes the app. From then on a request that
 * still arrives gets a 503 `RUNTIME_STOPPED` in the API's envelope. Returns the close function;
 * call it once.
 */
export function gracefulClose(app: FastifyInstance, window = DRAIN_WINDOW): () => Promise<void> {
  let draining = false;
  let closing = false;
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Once draining begins, every response says `Connection: close`: a listener added then marks
  // Node's response as each request arrives. (An onSend hook checking a flag cost every request
  // about 2% of its instructions, counted with callgrind.)
  const drain = () => {
    if (draining) return;
    draining = true;
    app.server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
      response.shouldKeepAlive = false;
    });
  };
  app.addHook('preClose', (done) => {
    closing = true;
    drain();
    done();
  });
  app.addHook('onRequest', (_request, _reply, done) => {
    if (!closing) return done();
    done(
      new ApiError(
        'RUNTIME_STOPPED',
        'the service is shutting down and takes no new requests; try again in a moment',
      ),
    );
  });

  return async () => {
    drain();
    if (app.server.listening) {
      // net.Server's own close: stop listening, leave the open connections be (http.Server's
      // close would destroy the idle-looking ones now).
      NetServer.prototype.close.call(app.server);
      await socketsGone(sockets, window);
      // A connection that has sent nothing by now holds no request: Fastify's close would wait
      // for it until the request timeout (30 s), past the grace the platforms give.
      for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
    }
    await app.close();
  };
}

/**
 * Resolves once every socket has closed, or after `window` ms. A socket that fails (a client gone
 * in the middle of a request) closes too: its error is not this wait's.
 */
async function socketsGone(sockets: Set<Socket>, window: number): Promise<void> {
  const deadline = performance.now() + window;
  while (sockets.size > 0) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    const [socket] = sockets;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      socket!.once('close', () => resolve());
      timer = setTimeout(resolve, left);
    });
    clearTimeout(timer);
  }
}
