import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
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
