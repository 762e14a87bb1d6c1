/**
 * A plain node:http server with Offload on SQLite: `POST /signup` answers 202 at once, with the
 * id of the welcome task it stored; the task runs right after, in this process;
 * `GET /api/tasks/:id` says how it went.
 *
 *   node --conditions=source --import tsx examples/node/server.ts
 *   curl -i -X POST localhost:3000/signup -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
 *
 * PORT (default 3000), HOST (127.0.0.1) and DATABASE_PATH (./data/node-example.db) set where.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { json } from 'node:stream/consumers';
import { createRuntime, defineTask, taskView } from 'offload';
import { accepted, withBackground, type Background } from 'offload/node';
import { sqliteStore } from 'offload/sqlite';

const sendWelcome = defineTask<{ email: string }>({
  name: 'send-welcome',
  async run({ email }, { logger }) {
    logger.info({ email }, 'welcome sent'); // a real one would call a mail API, with `signal`
    return { to: email };
  },
});

const runtime = createRuntime({
  store: sqliteStore({ path: process.env.DATABASE_PATH ?? './data/node-example.db' }),
  tasks: [sendWelcome],
});

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function signup(req: IncomingMessage, res: ServerResponse, background: Background) {
  const { email } = (await json(req)) as { email?: unknown };
  if (typeof email !== 'string') {
    return send(res, 400, {
      ok: false,
      error: { code: 'BAD_EMAIL', message: 'email is required' },
    });
  }
  background.add(sendWelcome, { email });
  const [task] = await background.commit(); // stored now, so the answer can name it
  accepted(res, task!);
}

async function status(res: ServerResponse, id: string) {
  const task = await runtime.get(id);
  if (!task) {
    return send(res, 404, {
      ok: false,
      error: { code: 'TASK_NOT_FOUND', message: 'no such task' },
    });
  }
  send(res, 200, taskView(task));
}

// Starts the runtime now, and stops it when this server closes.
const server = createServer(
  withBackground(runtime, async (req, res, background) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'POST' && pathname === '/signup') return signup(req, res, background);
    const id = /^\/api\/tasks\/([^/]+)$/.exec(pathname)?.[1];
    if (req.method === 'GET' && id) return status(res, decodeURIComponent(id));
    send(res, 404, { ok: false, error: { code: 'NOT_FOUND', message: 'no such route' } });
  }),
);

const host = process.env.HOST ?? '127.0.0.1';
server.listen(Number(process.env.PORT ?? 3000), host, () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening on http://${host}:${port}\n`);
});

// On SIGTERM the server closes, and with it the runtime, gracefully.
process.once('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
});
