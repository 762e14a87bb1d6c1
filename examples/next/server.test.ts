/**
 * examples/next as users run it: the library built, `next build`, then `next start` as a child
 * process on a free port of 127.0.0.1 (its SQLite file in a temporary directory). `POST
 * /api/signup` answers 202 with the task's Location, the task runs, the Location says so, and
 * SIGTERM stops the runtime and exits 0. About 30 s on a 2-core machine, most of it building.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, tempDir, waitUntil } from '../../packages/offload/test/helpers.js';

const run = promisify(execFile);
const NEXT = join(ROOT, 'node_modules/.bin/next');
const EXAMPLE = join(ROOT, 'examples/next');
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it(
  'examples/next: builds, answers 202, runs the task, shows it at its Location, stops on SIGTERM',
  { timeout: 240_000 },
  async () => {
    // `next start` loads the built library (its exports' default condition), not the sources.
    await run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'packages/offload/tsconfig.build.json'],
      { cwd: ROOT, env },
    );
    await run(NEXT, ['build', '--webpack', EXAMPLE], { cwd: ROOT, env, timeout: 180_000 });

    const temp = tempDir();
    const database = join(temp.dir, 'example.db');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      NEXT,
      ['start', EXAMPLE, '--port', String(port), '--hostname', '127.0.0.1'],
      {
        cwd: ROOT,
        env: { ...env, DATABASE_PATH: database, NEXT_MANUAL_SIG_HANDLE: 'true' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          if (/Ready in/.test(out)) resolve();
        });
        void exited.then(([code]) => reject(new Error(`next start exited with ${code}`)));
      });

      const response = await fetch(`${url}/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'ada@example.com' }),
      });
      assert.equal(response.status, 202);
      const { ok, id } = (await response.json()) as { ok: boolean; id: string };
      assert.equal(ok, true);
      const location = response.headers.get('location');
      assert.equal(location, `/api/tasks/${id}`);

      let view: { state?: string; result?: unknown } = {};
      await waitUntil('the task to succeed in the example', async () => {
        view = (await (await fetch(`${url}${location}`)).json()) as typeof view;
        return view.state === 'succeeded';
      });
      assert.deepEqual(view.result, { to: 'ada@example.com' });
      assert.equal((await fetch(`${url}/api/tasks/987654`)).status, 404);
      assert.ok(existsSync(database), 'the task is in the SQLite file');

      child.kill('SIGTERM');
      const [code, signal] = await exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      temp.remove();
    }
  },
);
