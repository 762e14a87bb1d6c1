import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dashboard } from './dashboard.js';
import { MAX_BODY, type DashboardRequest, type DashboardResponse } from './http.js';

/**
 * The dashboard as a Node request listener: for `http.createServer`, Express (`app.use(handler)`),
 * Connect, or any framework that hands over Node's request and response. The URL read is
 * Express's `originalUrl` when there is one (a mount strips its path from `url`).
 */
export function nodeHandler(
  dashboard: Dashboard,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void readBody(req).then(
      async (body) => {
        const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
        const answer = await dashboard.handle({
          method: req.method ?? 'GET',
          url,
          headers: req.headers,
          body,
        });
        writeNode(answer, req, res);
      },
      () => {
        if (!res.headersSent)
          res.writeHead(413, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
        res.end('The form is too large.');
      },
    );
  };
}

/** Writes an answer on Node's response; a stream lasts until the client goes away. */
export function writeNode(
  answer: DashboardResponse,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  res.writeHead(answer.status, answer.headers);
  if ('body' in answer) {
    res.end(req.method === 'HEAD' ? undefined : answer.body);
    return;
  }
  res.flushHeaders();
  const stop = answer.stream(
    (frame) => res.write(frame),
    () => res.end(),
  );
  const end = () => {
    stop();
    req.off('close', end);
    res.off('close', end);
  };
  req.on('close', end);
  res.on('close', end);
}

function readBody(req: IncomingMessage): Promise<string> {
  // A framework may have read the body already (Express's urlencoded parser): a string kept.
  const parsed = (req as { body?: unknown }).body;
  if (typeof parsed === 'string') return Promise.resolve(parsed);
  if (parsed !== undefined && parsed !== null && typeof parsed === 'object') {
    return Promise.resolve(new URLSearchParams(parsed as Record<string, string>).toString());
  }
  if (req.method !== 'POST') return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The dashboard as a fetch-style handler, `(Request) => Promise<Response>`: for Hono, Bun, Deno
 * or anything built on the WHATWG `Request` and `Response`.
 */
export function fetchHandler(dashboard: Dashboard): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const declared = Number(request.headers.get('content-length') ?? 0);
    if (declared > MAX_BODY) return new Response('The form is too large.', { status: 413 });
    const text = request.method === 'POST' ? await request.text() : '';
    if (text.length > MAX_BODY) return new Response('The form is too large.', { status: 413 });
    const headers: IncomingHttpHeaders = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const input: DashboardRequest = {
      method: request.method,
      url: `${url.pathname}${url.search}`,
      headers,
      body: text,
    };
    const answer = await dashboard.handle(input);
    const out = new Headers();
    for (const [name, value] of Object.entries(answer.headers)) {
      for (const one of [value].flat()) out.append(name, one);
    }
    if ('body' in answer) {
      const body = request.method === 'HEAD' || answer.status === 303 ? null : answer.body;
      return new Response(body, { status: answer.status, headers: out });
    }
    let stop: (() => void) | null = null;
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        stop = answer.stream(
          (frame) => controller.enqueue(encoder.encode(frame)),
          () => {
            try {
              controller.close();
            } catch {
              // Closed already.
            }
          },
        );
        request.signal.addEventListener('abort', () => {
          stop?.();
          stop = null;
          try {
            controller.close();
          } catch {
            // Closed already.
          }
        });
      },
      cancel() {
        stop?.();
        stop = null;
      },
    });
    return new Response(stream, { status: answer.status, headers: out });
  };
}
