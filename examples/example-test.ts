/**
 * What each example's test checks: the example, started as users start it (a child process on a
 * free port of 127.0.0.1, its SQLite file in a temporary directory), answers `POST /signup` with
 * 202 and the task's Location, runs the task, says so at that Location, and exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { it } from 'node:test';
import { ROOT, tempDir, waitUntil } from '../packages/offload/test/helpers.js';

export function exampleTest(name: 'express' | 'hono' | 'node'): void {
  it(`examples/${name}: answers 202, runs the task, shows it at its Location, stops on SIGTERM`, async () => {
    const temp = tempDir();
    const database = join(temp.dir, 'example.db');
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', join(ROOT, 'examples', name, 'server.ts')],
      {
        cwd: ROOT,
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_PATH: database },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          const found = /listening on (http:\/\/\S+)/.exec(out);
          if (found) resolve(found[1]!);
        });
        void exited.then(([code]) => reject(new Error(`the example exited with ${code}`)));
      });

      const response = await fetch(`${url}/signup`, {
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
      assert.equal((await fetch(`${url}/api/tasks/nope`)).status, 404);
      assert.ok(existsSync(database), 'the task is in the SQLite file');

      child.kill('SIGTERM');
      const [code, signal] = await exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      temp.remove();
    }
  });
}
