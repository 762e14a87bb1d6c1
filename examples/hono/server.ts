/**
 * Hono on @hono/node-server with Offload on SQLite: `POST /signup` answers 202 at once, with the
 * id of the welcome task it stored; the task runs right after, in this process;
 * `GET /api/tasks/:id` says how it went.
 *
 *   node --conditions=source --import tsx examples/hono/server.ts
 *   curl -i -X POST localhost:3000/signup -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
 *
 * PORT (default 3000), HOST (127.0.0.1) and DATABASE_PATH (./data/hono-example.db) set where.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createRuntime, defineTask, taskView } from 'offload';
import { accepted, offload } from 'offload/hono';
import { sqliteStore } from 'offload/sqlite';

const sendWelcome = defineTask<{ email: string }>({
  name: 'send-welcome',
  async run({ email }, { logger }) {
    logger.info({ email }, 'welcome sent'); // a real one would call a mail API, with `signal`
    return { to: email };
  },
});

const runtime = createRuntime({
  store: sqliteStore({ path: process.env.DATABASE_PATH ?? './data/hono-example.db' }),
  tasks: [sendWelcome],
});

const app = new Hono();
// Starts the runtime now, and stops it when the server below closes.
app.use(offload({ runtime }));

app.post('/signup', async (c) => {
  const { email } = await c.req.json<{ email?: unknown }>();
  if (typeof email !== 'string') {
    return c.json({ ok: false, error: { code: 'BAD_EMAIL', message: 'email is required' } }, 400);
  }
  c.get('background').add(sendWelcome, { email });
  const [task] = await c.get('background').commit(); // stored now, so the answer can name it
  return accepted(c, task!);
});

app.get('/api/tasks/:id', async (c) => {
  const task = await runtime.get(c.req.param('id'));
  if (!task) {
    return c.json({ ok: false, error: { code: 'TASK_NOT_FOUND', message: 'no such task' } }, 404);
  }
  return c.json(taskView(task));
});

const host = process.env.HOST ?? '127.0.0.1';
const server = serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: host },
  ({ port }: AddressInfo) => process.stdout.write(`listening on http://${host}:${port}\n`),
);

// On SIGTERM the server closes, and with it the runtime, gracefully.
process.once('SIGTERM', () => {
  server.close();
  if ('closeIdleConnections' in server) server.closeIdleConnections();
});
