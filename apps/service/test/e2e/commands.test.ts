import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { checkVapidKeys } from '../../../../packages/notifications/src/channels/web-push-crypto.js';
import { CLI, ROOT } from '../fixtures/service-harness.js';

const run = promisify(execFile);

/** Runs the service's command; resolves with its output (a failure rejects). */
async function command(...args: string[]): Promise<{ code: number; stdout: string }> {
  const { stdout } = await run(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', CLI, ...args],
    { cwd: ROOT, timeout: 15_000, killSignal: 'SIGKILL' },
  );
  return { code: 0, stdout };
}

/** Runs the service's command with `env` added; resolves with its exit code and output, whatever the code. */
async function outcome(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: 15_000, killSignal: 'SIGKILL' },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe('offload-service', () => {
  it('prints its usage for --help, -h and help, after a command too, and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help'], ['serve', '--help'], ['worker', '-h']]) {
      const { code, stdout, stderr } = await outcome(args);
      assert.equal(code, 0, args.join(' '));
      assert.match(stdout, /^offload-service — the notification service/, args.join(' '));
      assert.match(stdout, /offload-service serve --no-runner/);
      assert.equal(stderr, '');
    }
  });

  it('prints the version of the service', async () => {
    const { version } = createRequire(import.meta.url)('../../package.json') as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      assert.deepEqual(await outcome([flag]), { code: 0, stdout: `${version}\n`, stderr: '' });
    }
  });

  it('exits 2 on a mistake in the call, naming what a typo meant, with the usage', async () => {
    for (const [args, message] of [
      [['serv'], 'unknown command "serv"; did you mean serve?'],
      [['wroker'], 'unknown command "wroker"; did you mean worker?'],
      [['launch'], 'unknown command "launch"'],
      [['serve', '--no-runer'], 'unknown option --no-runer; did you mean --no-runner?'],
      [['--no-runer'], 'unknown option --no-runer; did you mean --no-runner?'],
      [['--verison'], 'unknown option --verison; did you mean --version?'],
      [['worker', '--no-runner'], 'unknown option --no-runner'],
      [['serve', '--no-runner=yes'], '--no-runner takes no value'],
      [
        ['serve', 'now'],
        'unexpected argument "now": offload-service serve takes no arguments but --no-runner; configure it with environment variables',
      ],
      [['vapid', '2'], 'unexpected argument "2": offload-service vapid takes no arguments'],
    ] as const) {
      const { code, stdout, stderr } = await outcome([...args]);
      assert.equal(code, 2, args.join(' '));
      assert.equal(stdout, '');
      const [first, ...rest] = stderr.split('\n');
      assert.equal(first, `offload-service: ${message}`);
      assert.match(rest.join('\n'), /^\noffload-service — the notification service/);
    }
  });

  it('logs readable lines with LOG_FORMAT=pretty, JSON through a pipe otherwise, and refuses other formats', async () => {
    const pretty = await outcome(['serve'], {
      LOG_FORMAT: 'pretty',
      DATABASE_URL: 'sqlite:/proc/offload-forbidden/x.db',
    });
    assert.equal(pretty.code, 1, pretty.stderr);
    assert.match(pretty.stdout, /^\[[\d:.]+\] FATAL \(offload\): could not start: DATABASE_URL: /m);
    assert.doesNotMatch(pretty.stdout, /^\{/m, 'no JSON line');
    const piped = await outcome(['serve'], { DATABASE_URL: 'sqlite:/proc/offload-forbidden/x.db' });
    const fatal = JSON.parse(piped.stdout.trimEnd().split('\n').at(-1)!) as { level: number };
    assert.equal(fatal.level, 60, 'JSON lines when stdout is not a terminal');
    const unknown = await outcome(['serve'], { LOG_FORMAT: 'text' });
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /^offload: invalid configuration: LOG_FORMAT: must be json or pretty/,
    );
  });
});

describe('offload-service vapid', () => {
  it('prints a new, valid VAPID key pair as environment variables', async () => {
    const { code, stdout } = await command('vapid');
    assert.equal(code, 0);
    const match = /^VAPID_PUBLIC_KEY=([\w-]{87})\nVAPID_PRIVATE_KEY=([\w-]{43})\n$/.exec(stdout);
    assert.ok(match, stdout);
    assert.equal(checkVapidKeys({ publicKey: match[1]!, privateKey: match[2]! }), null);
    const again = await command('vapid');
    assert.notEqual(again.stdout, stdout, 'a new pair each time');
  });
});
