import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { notificationId } from '../../../../packages/notifications/src/index.js';
import {
  DEMO_DONE,
  DEMO_START,
  finishedTasks,
  listeningUrl,
  spawnCli,
  tempDir,
  type Child,
} from '../fixtures/service-harness.js';
import { waitUntil } from '../../../../packages/offload/test/helpers.js';

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
    // The outcomes are stored a moment after the tasks log their last line.
    const tasks = await finishedTasks(secondUrl, ids);
    assert.deepEqual(
      tasks.map((t) => [t.state, t.attempts]),
      [
        ['succeeded', 1],
        ['succeeded', 1],
        ['succeeded', 1],
      ],
    );
    second.process.kill('SIGINT');
    assert.equal(await second.exited(), 0, second.stderr());
  });

  it('on SIGTERM under load: answers what is in flight, stores every 200, exits 0 within the grace; the interrupted tasks run after a restart with attempts 1', async () => {
    const env = { DATABASE_URL: `sqlite:${join(temp.dir, 'deploy.db')}`, SHUTDOWN_GRACE: '1' };
    const first = serve({ ...env, NOTIFY_DEMO_DELAY_MS: '60000' });
    const url = await listeningUrl(first.logs);
    const load = new Load(url, 8);
    // Under way: requests keep coming, tasks are running (and more are queued behind them).
    await load.reach(150);
    await first.logs.waitForCount((l) => l.msg === DEMO_START, 50, 10_000);

    const signaled = performance.now();
    load.signaled = true;
    first.process.kill('SIGTERM');
    assert.equal(await first.exited(10_000), 0, first.stderr());
    const took = performance.now() - signaled;
    await load.stopped;
    assert.ok(took < 1000 + 3000, `took ${Math.round(took)} ms with a grace of 1 s`);

    const outcomes = load.outcomes;
    const accepted = outcomes.filter((o) => o.status === 200);
    const inFlight = outcomes.filter((o) => o.sentBeforeSignal && o.endedAfterSignal);
    assert.ok(accepted.length >= 150);
    assert.ok(inFlight.length > 0, 'requests were in flight at the signal');
    // Requests sent before the signal were answered; later ones were answered or refused cleanly.
    for (const o of outcomes) {
      if (o.sentBeforeSignal)
        assert.ok(o.status !== undefined, `in flight, not answered: ${o.error}`);
      else assert.ok(o.status !== undefined || o.error === 'ECONNREFUSED', `after: ${o.error}`);
      if (o.status !== undefined) assert.ok(o.status === 200 || o.status === 503, `${o.status}`);
    }
    const handedBack = first.logs.lines.filter(
      (l) => l.msg === 'handed a running task back to the queue on shutdown',
    );
    assert.ok(handedBack.length >= 50, `${handedBack.length} handed back`);

    const second = serve({ ...env, NOTIFY_DEMO_DELAY_MS: '0' });
    const secondUrl = await listeningUrl(second.logs);
    // Every 200 was stored, and runs to success on its first attempt: the interrupted ones got
    // theirs back. A 503 or a refused connection stored nothing.
    const deadline = Date.now() + 20_000;
    for (const o of accepted) {
      let task = { state: 'unknown', attempts: 0 };
      await waitUntil(
        `task ${o.id} to succeed`,
        async () => {
          task = (await (await fetch(`${secondUrl}/api/tasks/${o.id}`)).json()) as typeof task;
          return task.state === 'succeeded';
        },
        { timeout: Math.max(0, deadline - Date.now()) },
      );
      assert.equal(task.attempts, 1, `task ${o.id}`);
    }
    for (const o of outcomes.filter((x) => x.status !== 200 && x.status !== undefined)) {
      const response = await fetch(`${secondUrl}/api/notifications/${notificationId(o.key)}`);
      assert.equal(response.status, 404, `a ${o.status} stored its notification`);
    }
    console.log(
      `# SIGTERM under load: ${outcomes.length} requests, ${accepted.length} accepted, ${inFlight.length} in flight at the signal, ${outcomes.filter((o) => o.status === 503).length} answered 503, ${outcomes.filter((o) => o.error === 'ECONNREFUSED').length} refused; exit 0 after ${Math.round(took)} ms; ${handedBack.length} handed back, all succeeded after the restart with attempts 1`,
    );
    second.process.kill('SIGTERM');
    assert.equal(await second.exited(), 0, second.stderr());
  });

  it('exits on SIGTERM when its stdout is gone (the log reader went away)', async () => {
    const child = serve({ DATABASE_URL: `sqlite:${join(temp.dir, 'no-stdout.db')}` });
    const url = await listeningUrl(child.logs);
    // Answered once listen() has returned, so the signal handlers are in place. No connection is
    // kept: the stop is quick, and exits while its first line to the closed stdout is pending.
    const health = await fetch(`${url}/healthz`, { headers: { connection: 'close' } });
    assert.equal(health.status, 200);
    // The reading end of its stdout closes: every later log line meets EPIPE.
    child.process.stdout!.destroy();
    const signaled = performance.now();
    child.process.kill('SIGTERM');
    assert.equal(await child.exited(10_000), 0, child.stderr());
    assert.ok(performance.now() - signaled < 5000);
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

interface Outcome {
  key: string;
  sentBeforeSignal: boolean;
  endedAfterSignal: boolean;
  status?: number;
  id?: string;
  /** The connection error's code, when there was no answer. */
  error?: string;
}

/**
 * Notify requests from `lanes` clients back to back over kept-alive connections, each with its
 * own Idempotency-Key; a lane stops at its first refused connection once the signal was sent.
 */
class Load {
  readonly outcomes: Outcome[] = [];
  signaled = false;
  readonly stopped: Promise<void>;
  private readonly agent = new http.Agent({ keepAlive: true });
  private waiters: { count: number; resolve: () => void }[] = [];
  private accepted = 0;

  constructor(
    private readonly url: string,
    lanes: number,
  ) {
    const deadline = Date.now() + 30_000;
    this.stopped = Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = 0; Date.now() < deadline; i++) {
          const outcome = await this.send(`deploy-${lane}-${i}`);
          if (this.signaled && outcome.error !== undefined) return;
        }
        throw new Error('the load did not stop within 30 s');
      }),
    ).then(() => this.agent.destroy());
  }

  /** Resolves once `count` requests were accepted. */
  reach(count: number): Promise<void> {
    if (this.accepted >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  private send(key: string): Promise<Outcome> {
    const outcome: Outcome = {
      key,
      sentBeforeSignal: this.signaled === false,
      endedAfterSignal: false,
    };
    this.outcomes.push(outcome);
    return new Promise((resolve) => {
      const end = () => {
        outcome.endedAfterSignal = this.signaled;
        resolve(outcome);
      };
      const request = http.request(`${this.url}/api/notifications/notify`, {
        method: 'POST',
        agent: this.agent,
        headers: { 'idempotency-key': key },
        timeout: 10_000,
      });
      request.on('timeout', () =>
        request.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })),
      );
      request.on('error', (error: NodeJS.ErrnoException) => {
        outcome.error = error.code ?? error.message;
        end();
      });
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => {
          outcome.status = response.statusCode;
          if (outcome.status === 200) {
            outcome.id = (JSON.parse(body) as { id: string }).id;
            this.accepted += 1;
            this.waiters = this.waiters.filter((w) =>
              w.count <= this.accepted ? w.resolve() : true,
            );
          }
          end();
        });
      });
      request.end();
    });
  }
}
