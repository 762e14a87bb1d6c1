import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import {
  DEMO_DONE,
  DEMO_START,
  listeningUrl,
  spawnCli,
  tempDir,
  type Child,
} from './fixtures/service-harness.js';

const temp = tempDir();
const children: Child[] = [];
after(() => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  temp.remove();
});

function serve(env: Record<string, string>): Child {
  const child = spawnCli(['serve'], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  children.push(child);
  return child;
}

describe('the service process', () => {
  it('on SIGTERM exits 0 within the grace; the tasks it handed back succeed after a restart with attempts 1', async () => {
    const env = { DATABASE_URL: `sqlite:${join(temp.dir, 'service.db')}`, SHUTDOWN_GRACE: '1' };
    // Tasks that work far longer than the grace: they are running when SIGTERM comes.
    const first = serve({ ...env, NOTIFY_DEMO_DELAY_MS: '60000' });
    const url = await listeningUrl(first.logs);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${url}/api/notifications/notify`, { method: 'POST' });
      assert.equal(response.status, 200);
      ids.push(((await response.json()) as { id: string }).id);
    }
    await first.logs.waitForCount((l) => l.msg === DEMO_START, 3);

    const signaled = performance.now();
    first.process.kill('SIGTERM');
    assert.equal(await first.exited(10_000), 0, first.stderr());
    const took = performance.now() - signaled;
    // It waited for the grace before handing tasks back; exit code 0 (not the failsafe's 1, at
    // grace + 5 s) shows it did not overrun. The upper bound is loose: the machine is shared.
    assert.ok(took >= 900 && took < 1000 + 5000, `took ${Math.round(took)} ms with a grace of 1 s`);
    const handedBack = first.logs.lines.filter(
      (l) => l.msg === 'handed a running task back to the queue on shutdown',
    );
    assert.deepEqual(handedBack.map((l) => l.taskId).sort(), [...ids].sort());
    assert.ok(!first.logs.lines.some((l) => l.msg === DEMO_DONE));

    const second = serve({ ...env, NOTIFY_DEMO_DELAY_MS: '20' });
    const secondUrl = await listeningUrl(second.logs);
    await second.logs.waitForCount((l) => l.msg === DEMO_DONE, 3, 10_000);
    for (const id of ids) {
      const task = (await (await fetch(`${secondUrl}/api/tasks/${id}`)).json()) as {
        state: string;
        attempts: number;
      };
      assert.deepEqual([task.state, task.attempts], ['succeeded', 1], `task ${id}`);
    }
    second.process.kill('SIGINT');
    assert.equal(await second.exited(), 0, second.stderr());
  });

  it('refuses to start with a bad setting, naming the variable', async () => {
    for (const [name, value] of [
      ['PORT', 'eighty'],
      ['SHUTDOWN_GRACE', '-1'],
      ['CONCURRENCY', '0'],
      ['OFFLOAD_API_KEY', 'short'],
      ['DATABASE_URL', 'mysql://db'],
    ]) {
      const child = serve({ DATABASE_URL: 'memory:', [name!]: value! });
      const code = await child.exited();
      assert.notEqual(code, 0, `${name}=${value}`);
      const output = child.stderr() + JSON.stringify(child.logs.lines);
      assert.match(output, new RegExp(name!), `${name}=${value}: ${output}`);
    }
  });
});
