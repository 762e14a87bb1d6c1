/**
 * Runs the inbox example (app.ts). Start the service with INBOX_SECRET set, then:
 *   SERVICE_URL=http://127.0.0.1:8000 INBOX_SECRET=… PORT=3000 \
 *     node --conditions=source --import tsx examples/inbox/server.ts
 * open http://127.0.0.1:3000, and send the user something:
 *   curl -X POST localhost:8000/api/notifications/notify -H 'content-type: application/json' \
 *     -d '{"channel":"inbox","to":"ada","subject":"Hello","body":"From the inbox channel"}'
 */
import type { AddressInfo } from 'node:net';
import { createInboxExample } from './app.js';

const secret = process.env.INBOX_SECRET;
if (!secret) throw new Error("set INBOX_SECRET to the service's INBOX_SECRET");
const server = createInboxExample({
  serviceUrl: process.env.SERVICE_URL ?? 'http://127.0.0.1:8000',
  secret,
  user: process.env.INBOX_USER ?? 'ada',
});
const host = process.env.HOST ?? '127.0.0.1';
server.listen(Number(process.env.PORT ?? 3000), host, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening on http://${host}:${port}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
