import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { spawnCli, tempDir, type Child, type LogLine } from '../fixtures/service-harness.js';

/** Kills a child that does not exit: a start that hangs fails the test instead of the run. */
const KILL_AFTER = 20_000;

const temp = tempDir();
const children: Child[] = [];
after(() => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  temp.remove();
});

/**
 * Runs `offload <command>` to its end, killed with SIGKILL (a hang ignored SIGTERM) if it has not
 * exited after KILL_AFTER; resolves with its exit code and output.
 */
async function start(
  command: string,
  env: Record<string, string>,
): Promise<{ code: number | string; stderr: string; lines: LogLine[] }> {
  const child = spawnCli([command], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  children.push(child);
  const code = await child.exited(KILL_AFTER).catch((error: Error) => {
    child.process.kill('SIGKILL');
    throw error;
  });
  return { code, stderr: child.stderr(), lines: child.logs.lines };
}

/** The fatal line of a start that failed: it says what to change, and carries no stack. */
function fatalLine(lines: LogLine[]): LogLine {
  const fatal = lines.filter((l) => l.level === 60);
  assert.equal(fatal.length, 1, JSON.stringify(lines));
  assert.equal(fatal[0]!.err, undefined, 'no error object, so no stack');
  assert.doesNotMatch(JSON.stringify(fatal[0]), /\n\s+at /);
  return fatal[0]!;
}

describe('a service that cannot start', () => {
  it('refuses a DATABASE_URL of the wrong form in one line, as any bad variable', async () => {
    for (const [value, message] of [
      ['foo:bar', /"foo:bar" is not a store URL; use memory:/],
      ['sqlite:', /sqlite: needs a file path/],
      ['memory:extra', /memory: takes nothing after the colon/],
      ['postgres://[bad', /is not a valid postgres:\/\/ URL/],
    ] as const) {
      const { code, stderr, lines } = await start('serve', { DATABASE_URL: value });
      assert.equal(code, 1, value);
      assert.deepEqual(lines, [], `${value}: nothing is logged, not even "starting"`);
      assert.match(stderr, /^offload: invalid configuration: DATABASE_URL: .*\n$/, value);
      assert.match(stderr, message, value);
    }
  });

  it('fails at once on a database path under /proc, naming DATABASE_URL and the directory', async () => {
    // Node 20's recursive mkdir looped there forever, at full CPU and deaf to SIGTERM.
    const env = { DATABASE_URL: 'sqlite:/proc/offload-forbidden/x.db' };
    const expected =
      /DATABASE_URL: could not open the SQLite database \/proc\/offload-forbidden\/x\.db: could not create the directory \/proc\/offload-forbidden: ENOENT/;
    for (const command of ['serve', 'worker']) {
      const { code, lines } = await start(command, env);
      assert.equal(code, 1, command);
      const fatal = fatalLine(lines);
      assert.equal(fatal.code, 'STORE_OPEN_FAILED');
      assert.match(fatal.msg, /^could not start: /);
      assert.match(fatal.msg, expected, command);
    }
    assert.ok(!existsSync('/proc/offload-forbidden'));
  });

  it('says so when the database path is a directory', async () => {
    const { code, lines } = await start('serve', { DATABASE_URL: `sqlite:${temp.dir}` });
    assert.equal(code, 1);
    assert.match(
      fatalLine(lines).msg,
      new RegExp(`DATABASE_URL: could not open the SQLite database ${temp.dir}: it is a directory`),
    );
  });

  it('names HOST when it does not resolve', async () => {
    // .invalid never resolves (RFC 6761).
    const { code, lines } = await start('serve', {
      DATABASE_URL: 'memory:',
      HOST: 'not.a.host.invalid',
    });
    assert.equal(code, 1);
    const fatal = fatalLine(lines);
    assert.equal(fatal.code, 'LISTEN_FAILED');
    assert.match(
      fatal.msg,
      /^could not start: HOST not\.a\.host\.invalid could not be resolved to an address \(ENOTFOUND\); set HOST to /,
    );
  });

  it('names PORT when another process listens on it', async () => {
    const taken = await listening();
    try {
      const port = (taken.address() as { port: number }).port;
      const { code, lines } = await start('serve', { DATABASE_URL: 'memory:', PORT: `${port}` });
      assert.equal(code, 1);
      const fatal = fatalLine(lines);
      assert.equal(fatal.code, 'LISTEN_FAILED');
      assert.equal(
        fatal.msg,
        `could not start: PORT ${port} on 127.0.0.1 is in use by another process; stop it or set PORT to a free port`,
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

/** A server holding a free port on 127.0.0.1. */
function listening(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
