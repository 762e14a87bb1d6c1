/**
 * A host app that shows a signed-in user their Offload inbox. Its backend does two things:
 *
 * - `GET /session` tells the page who is signed in and hands it a recipient token, the
 *   HMAC-SHA-256 of the user's id under INBOX_SECRET (the same secret the service has);
 * - `/api/recipients/<id>/inbox…` is passed through to the service, so that the page, the list
 *   and the live stream share one origin (no CORS), as a reverse proxy in front of both would do.
 *
 * `server.ts` runs it; the page itself is public/index.html and public/inbox.js.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';

const PUBLIC = join(import.meta.dirname, 'public');
const FILES: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/inbox.js': ['inbox.js', 'text/javascript; charset=utf-8'],
};

export interface InboxExampleOptions {
  /** Where the notification service listens, e.g. http://127.0.0.1:8000. */
  serviceUrl: string;
  /** The service's INBOX_SECRET. */
  secret: string;
  /** The signed-in user (a real app reads it from its session). */
  user: string;
}

/** What a host app's backend computes to let its user read their own inbox. */
export function recipientToken(secret: string, recipient: string): string {
  return createHmac('sha256', secret).update(recipient).digest('base64url');
}

export function createInboxExample({ serviceUrl, secret, user }: InboxExampleOptions): Server {
  const upstream = new URL(serviceUrl);
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/session') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ recipient: user, token: recipientToken(secret, user) }));
      return;
    }
    if (path.startsWith('/api/recipients/')) return pass(req, res);
    const file = FILES[path];
    if (!file) return void res.writeHead(404).end('not found');
    readFile(join(PUBLIC, file[0])).then(
      (body) => res.writeHead(200, { 'content-type': file[1] }).end(body),
      () => res.writeHead(500).end(),
    );
  });

  function pass(req: IncomingMessage, res: ServerResponse): void {
    const forwarded = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    // A stream the browser leaves ends upstream too.
    res.on('close', () => forwarded.destroy());
    req.pipe(forwarded);
  }
}
