/**
 * Express with Offload on SQLite: `POST /signup` answers 202 at once, with the id of the welcome
 * task it stored; the task runs right after, in this process; `GET /api/tasks/:id` says how it went.
 *
 *   node --conditions=source --import tsx examples/express/server.ts
 *   curl -i -X POST localhost:3000/signup -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
 *
 * PORT (default 3000), HOST (127.0.0.1) and DATABASE_PATH (./data/express-example.db) set where.
 */
import express from 'express';
import { createRuntime, defineTask, taskView } from 'offload';
import { accepted, offload, offloadErrors } from 'offload/express';
import { sqliteStore } from 'offload/sqlite';

const sendWelcome = defineTask<{ email: string }>({
  name: 'send-welcome',
  async run({ email }, { logger }) {
    logger.info({ email }, 'welcome sent'); // a real one would call a mail API, with `signal`
    return { to: email };
  },
});

const runtime = createRuntime({
  store: sqliteStore({ path: process.env.DATABASE_PATH ?? './data/express-example.db' }),
  tasks: [sendWelcome],
});

const app = express();
app.use(express.json());
// Starts the runtime now, and stops it when the server below closes.
app.use(offload({ runtime }));

app.post('/signup', async (req, res) => {
  const { email } = req.body as { email?: unknown };
  if (typeof email !== 'string') {
    res.status(400).json({ ok: false, error: { code: 'BAD_EMAIL', message: 'email is required' } });
    return;
  }
  req.background.add(sendWelcome, { email });
  const [task] = await req.background.commit(); // stored now, so the answer can name it
  accepted(res, task!);
});

app.get('/api/tasks/:id', async (req, res) => {
  const task = await runtime.get(req.params.id);
  if (!task) {
    res.status(404).json({ ok: false, error: { code: 'TASK_NOT_FOUND', message: 'no such task' } });
    return;
  }
  res.json(taskView(task));
});

// After the routes: a request that failed stores nothing it added.
app.use(offloadErrors());

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening on http://${process.env.HOST ?? '127.0.0.1'}:${port}\n`);
});

// On SIGTERM the server closes, and with it the runtime, gracefully.
process.once('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
});
