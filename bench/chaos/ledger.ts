/**
 * The receiving end of the kill test: a local webhook receiver (127.0.0.1 only) that records every
 * delivery it gets, by its `webhook-id`, after checking the Standard Webhooks signature.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Ledger {
  /** `http://127.0.0.1:PORT/hook`, the URL notifications are sent to. */
  url: string;
  /** Deliveries received, by `webhook-id`. */
  readonly deliveries: ReadonlyMap<string, number>;
  /** Every delivery received, duplicates included. */
  total(): number;
  /** Deliveries whose signature did not verify (answered 400, so they are not counted above). */
  badSignatures(): number;
  close(): Promise<void>;
}

export async function startLedger(secret: string): Promise<Ledger> {
  const verifier = new Webhook(secret);
  const deliveries = new Map<string, number>();
  const sockets = new Set<Socket>();
  let total = 0;
  let bad = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers = {
        'webhook-id': String(request.headers['webhook-id']),
        'webhook-timestamp': String(request.headers['webhook-timestamp']),
        'webhook-signature': String(request.headers['webhook-signature']),
      };
      try {
        verifier.verify(Buffer.concat(chunks).toString('utf8'), headers);
      } catch {
        bad += 1;
        response.writeHead(400).end();
        return;
      }
      const id = headers['webhook-id'];
      deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
      total += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1', 1024);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    total: () => total,
    badSignatures: () => bad,
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
