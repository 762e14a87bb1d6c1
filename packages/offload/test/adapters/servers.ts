import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import { accepted } from '../../src/adapters/answers.js';
import type { Reply, Served } from './table.js';

/** `server`, listening on a free port of 127.0.0.1; closing it drops its idle connections. */
export async function listening(server: Server): Promise<Served> {
  if (!server.listening) {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/** The error a table route throws for `{ throws }`, with `statusCode` as node:http users set it. */
export function thrown(reply: Extract<Reply, { throws: unknown }>, field: 'status' | 'statusCode') {
  const error = new Error(reply.throws === 'error' ? 'boom' : 'refused');
  if (reply.throws === 'status') Object.assign(error, { [field]: reply.status });
  return error;
}

/** Writes a table reply that is not a throw on a node:http (or Express) response. */
export function writeReply(res: ServerResponse, reply: Exclude<Reply, { throws: unknown }>): void {
  if ('accepted' in reply) return accepted(res, reply.accepted);
  res.writeHead(reply.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(reply.json));
}
