/** A server-sent events client over a real socket, for tests and benchmarks: parses what arrives. */
import { request, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  id: string | null;
  data: string;
}

export interface SseStream {
  status: number;
  response: IncomingMessage;
  /** Every event so far, in order. */
  events: SseEvent[];
  /** Comment lines so far (`: ping` heartbeats), without the colon. */
  comments: string[];
  /** Resolves once `count` events have arrived; rejects after `timeout` ms or when the stream ends. */
  waitForEvents(count: number, timeout?: number): Promise<SseEvent[]>;
  /** Resolves once `count` comments have arrived. */
  waitForComments(count: number, timeout?: number): Promise<string[]>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Called with each event as it arrives. */
  onEvent?: (event: SseEvent) => void;
  close(): void;
}

/**
 * Opens `url` as an event stream; resolves once the answer's headers arrive (any status: a 4xx
 * has its JSON body in `body`).
 */
export function openStream(
  url: string,
  headers: Record<string, string> = {},
  agent?: Agent,
): Promise<SseStream & { body: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, {
      ...(agent ? { agent } : {}),
      headers: { accept: 'text/event-stream', ...headers },
    });
    req.on('error', reject);
    req.on('response', (response) => {
      response.setEncoding('utf8');
      let buffer = '';
      const waiters = new Set<() => void>();
      let finished = false;
      const stream: SseStream & { body: () => Promise<string> } = {
        status: response.statusCode ?? 0,
        response,
        events: [],
        comments: [],
        ended: new Promise((done) => response.once('close', done)),
        waitForEvents: (count, timeout = 5000) =>
          waitFor(
            () => (stream.events.length >= count ? stream.events : null),
            timeout,
            `${count} events`,
          ),
        waitForComments: (count, timeout = 5000) =>
          waitFor(
            () => (stream.comments.length >= count ? stream.comments : null),
            timeout,
            `${count} comments`,
          ),
        close: () => {
          req.destroy();
        },
        body: async () => {
          await stream.ended;
          return buffer;
        },
      };
      function waitFor<T>(check: () => T | null, timeout: number, what: string): Promise<T> {
        return new Promise((ok, fail) => {
          const look = () => {
            const found = check();
            if (found === null && !finished) return;
            clearTimeout(timer);
            waiters.delete(look);
            if (found !== null) ok(found);
            else fail(new Error(`the stream ended before ${what}`));
          };
          const timer = setTimeout(() => {
            waiters.delete(look);
            fail(new Error(`no ${what} within ${timeout} ms`));
          }, timeout);
          waiters.add(look);
          look();
        });
      }
      const isEvents = (response.headers['content-type'] ?? '').startsWith('text/event-stream');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        if (!isEvents) return;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id: string | null = null;
          const data: string[] = [];
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) {
              data.push(line.slice(6));
              isEvent = true;
            }
          }
          if (isEvent) {
            const event = { id, data: data.join('\n') };
            stream.events.push(event);
            stream.onEvent?.(event);
          }
        }
        for (const look of [...waiters]) look();
      });
      response.once('close', () => {
        finished = true;
        for (const look of [...waiters]) look();
      });
      resolve(stream);
    });
    req.end();
  });
}
