/**
 * Store faults on SQLite, through the service over a real socket: a full disk (a 2 MiB tmpfs,
 * filled), a read-only file system, and the database file deleted or replaced under the running
 * service. Requests answer 503 STORE_UNAVAILABLE with what to check, never a false ok; the process
 * stays up; it recovers by itself; nothing accepted is lost. Needs root (mount); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sqliteStore } from '../../../../packages/offload/src/sqlite/index.js';
import {
  DEMO_START,
  finishedTasks,
  listeningUrl,
  spawnCli,
  tempDir,
  testService,
  type TestService,
} from '../fixtures/service-harness.js';
import { finished, nextEvent } from '../../../../packages/offload/test/helpers.js';

const temp = tempDir();
const mountPoint = join(temp.dir, 'tmpfs');
let mounted = false;
/** Why the tests cannot run here, or null. */
let cannotMount: string | null = null;

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { stdio: 'pipe', timeout: 5000 }).toString();
}

/** Why the `sqlite3` command cannot run here, or null. */
function cannotRunSqlite3(): string | null {
  try {
    run('sqlite3', ['-version']);
    return null;
  } catch {
    return 'the sqlite3 command is not installed (apt-get install sqlite3)';
  }
}

before(() => {
  mkdirSync(mountPoint);
  try {
    run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint]);
    mounted = true;
  } catch (error) {
    cannotMount = `mounting a tmpfs is not permitted here (${String((error as { stderr?: unknown }).stderr ?? error).trim()}); run as root`;
  }
});
after(() => {
  if (mounted) run('umount', ['-l', mountPoint]);
  temp.remove();
});

interface Answer {
  status: number;
  body: { ok: boolean; id?: string; error?: { code: string; message: string } };
}

async function notify(url: string): Promise<Answer> {
  const response = await fetch(`${url}/api/notifications/notify`, { method: 'POST' });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** Calls `attempt` until it returns a value, or throws after `timeout` ms. */
async function until<T>(what: string, attempt: () => Promise<T | undefined>, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Writes a file until the file system is full; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      for (;;) {
        try {
          written += writeSync(fd, Buffer.alloc(size));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

function assertUnavailable(answer: Answer, message: RegExp): void {
  assert.equal(answer.status, 503, JSON.stringify(answer.body));
  assert.equal(answer.body.ok, false);
  assert.equal(answer.body.error?.code, 'STORE_UNAVAILABLE');
  assert.match(answer.body.error?.message ?? '', message);
}

describe('store faults on SQLite, through the service', () => {
  it('a full disk: 503 with what to check, the process stays up, recovers when space is freed, loses nothing', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const dir = join(mountPoint, 'full');
    // Tasks work 300 ms: those accepted just before the fault finish during it, and must store
    // their outcome once the disk has room again.
    const s = await testService(
      { notifyDemoDelay: 300 },
      sqliteStore({ path: join(dir, 'offload.db'), busyTimeout: 25 }),
    );
    const filler = join(mountPoint, 'filler');
    try {
      const url = await s.listen();
      const accepted: string[] = [];
      for (let i = 0; i < 5; i++) accepted.push((await notify(url)).body.id!);

      const filled = fill(filler);
      // The WAL may still have room for a few commits: notify until the first refusal.
      const refused = await until('a refusal on a full disk', async () => {
        const answer = await notify(url);
        if (answer.status === 200) accepted.push(answer.body.id!);
        return answer.status === 200 ? undefined : answer;
      });
      assertUnavailable(refused, /database or disk is full.*free space/);
      for (let i = 0; i < 3; i++) assertUnavailable(await notify(url), /disk is full/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the process stays up');
      const read = await fetch(`${url}/api/tasks/${accepted[0]}`);
      assert.equal(read.status, 200, 'reads still work');
      // The tasks running now finish while the disk is full: their outcome cannot be stored yet.
      const unstored = await nextEvent(s.runtime, 'runtime:error', 5000, ({ during }) =>
        during.startsWith('storing the result of task'),
      );
      assert.match(String(unstored.error), /disk is full/);

      rmSync(filler);
      const recovered = await until('a notify after freeing space', async () => {
        const answer = await notify(url);
        return answer.status === 200 ? answer : undefined;
      });
      accepted.push(recovered.body.id!);
      for (const id of accepted) {
        const task = await finished(s.runtime, id);
        assert.equal(task.state, 'succeeded', `task ${id}`);
      }
      t.diagnostic(
        `full disk: filled ${filled} bytes; ${accepted.length} tasks accepted, all ran; refusals answered 503`,
      );
    } finally {
      rmSync(filler, { force: true });
      await s.close();
    }
  });

  it('a log that filled the disk by itself: /readyz 503 while writes fail, writes go on once some space is freed', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const dir = join(mountPoint, 'log-full');
    const s = await testService(
      { notifyDemoDelay: 0 },
      sqliteStore({ path: join(dir, 'offload.db'), busyTimeout: 25 }),
    );
    const reserve = join(mountPoint, 'reserve');
    try {
      const url = await s.listen();
      const fd = openSync(reserve, 'w');
      writeSync(fd, Buffer.alloc(512 * 1024));
      closeSync(fd);
      // No other file grows: the log takes the rest of the disk, one commit after another.
      const accepted: string[] = [];
      await until(
        'a refusal once the log filled the disk',
        async () => {
          const answer = await notify(url);
          if (answer.status === 200) accepted.push(answer.body.id!);
          return answer.status === 200 ? undefined : answer;
        },
        20_000,
      );
      assert.equal((await fetch(`${url}/readyz`)).status, 503, 'not ready while writes fail');
      assert.ok(statSync(join(dir, 'offload.db-wal')).size > 512 * 1024, 'the log filled the disk');

      rmSync(reserve);
      await until('a notify after freeing space', async () => {
        const answer = await notify(url);
        if (answer.status === 200) accepted.push(answer.body.id!);
        return answer.status === 200 ? answer : undefined;
      });
      // More than the freed space would hold of log: the log was copied into the database and
      // emptied, instead of filling the disk again.
      for (let i = 0; i < 60; i++) {
        const answer = await notify(url);
        assert.equal(
          answer.status,
          200,
          `notify ${i} after recovering: ${JSON.stringify(answer.body)}`,
        );
        accepted.push(answer.body.id!);
      }
      assert.equal((await fetch(`${url}/readyz`)).status, 200, 'ready again');
      for (const id of accepted) assert.equal((await finished(s.runtime, id)).state, 'succeeded');
      t.diagnostic(`log filled the disk: ${accepted.length} tasks accepted, all ran`);
    } finally {
      rmSync(reserve, { force: true });
      await s.close();
    }
  });

  it('another process opening and closing the database after a disk-full episode: the live log stays, nothing accepted is lost under kill -9', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const noSqlite3 = cannotRunSqlite3();
    if (noSqlite3) return t.skip(noSqlite3);
    // Larger than the shared mount: the checkpoint thread starts after 500 writes.
    const disk = join(temp.dir, 'tmpfs-large');
    mkdirSync(disk);
    run('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', disk]);
    const path = join(disk, 'offload.db');
    const child = spawnCli(['serve'], {
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: `sqlite:${path}`,
      NOTIFY_DEMO_DELAY_MS: '0',
      LOG_LEVEL: 'info',
    });
    const filler = join(disk, 'filler');
    try {
      const url = await listeningUrl(child.logs);
      for (let i = 0; i < 600; i++) assert.equal((await notify(url)).status, 200);
      // The disk fills while a burst of notifies is being committed: the log then holds new
      // pages that the database file must grow to take, so the thread's next pass fails.
      let answered = 0;
      const burst = Array.from({ length: 300 }, () => notify(url).then(() => (answered += 1)));
      await until('the burst to be under way', async () => (answered >= 50 ? true : undefined));
      fill(filler);
      await Promise.all(burst);
      await until('a refusal on the full disk', async () => {
        const answer = await notify(url);
        return answer.status === 200 ? undefined : answer;
      });
      await child.logs.waitFor((line) =>
        line.msg.startsWith('the SQLite checkpoint thread stopped'),
      );
      rmSync(filler);
      await until('a notify after freeing space', async () => {
        const answer = await notify(url);
        return answer.status === 200 ? answer : undefined;
      });

      const log = statSync(`${path}-wal`).ino;
      // A real second process: it deletes the log and index on close if it believes it is the
      // last user of the database, which it does when this process no longer holds its lock.
      assert.match(run('sqlite3', [path, 'SELECT count(*) FROM offload_tasks']), /^\d+\s*$/);
      assert.equal(
        statSync(`${path}-wal`, { throwIfNoEntry: false })?.ino,
        log,
        'the live log is kept',
      );

      const confirmed: string[] = [];
      for (let i = 0; i < 300; i++) {
        const answer = await notify(url);
        if (answer.status === 200) confirmed.push(answer.body.id!);
      }
      child.process.kill('SIGKILL');
      await child.exited();

      const store = sqliteStore({ path });
      await store.open();
      try {
        const missing: string[] = [];
        for (const id of confirmed) if ((await store.get(id)) === null) missing.push(id);
        assert.deepEqual(
          missing,
          [],
          `${missing.length} of ${confirmed.length} confirmed tasks lost`,
        );
      } finally {
        await store.close();
      }
      assert.ok(confirmed.length > 0, 'notifies were answered after the other process');
      t.diagnostic(`${confirmed.length} confirmed after the other process, 0 lost under kill -9`);
    } finally {
      child.process.kill('SIGKILL');
      await child.exited().catch(() => undefined);
      run('umount', ['-l', disk]);
    }
  });

  it('SIGTERM with the disk full: exits 0, says which tasks it could not hand back, and they run after a restart', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const path = join(mountPoint, 'sigterm', 'offload.db');
    const env = {
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: `sqlite:${path}`,
      NOTIFY_DEMO_DELAY_MS: '60000',
      SHUTDOWN_GRACE: '0',
      LOG_LEVEL: 'info',
    };
    const filler = join(mountPoint, 'filler');
    const first = spawnCli(['serve'], env);
    const accepted: string[] = [];
    try {
      const url = await listeningUrl(first.logs);
      for (let i = 0; i < 3; i++) accepted.push((await notify(url)).body.id!);
      await first.logs.waitForCount((line) => line.msg === DEMO_START, 3);
      fill(filler);
      first.process.kill('SIGTERM');
      assert.equal(await first.exited(15_000), 0, first.logs.tail());
      const report = await first.logs.waitFor((line) => line.msg.startsWith('could not hand back'));
      assert.equal(report.level, 40, 'a warning');
      assert.deepEqual([...(report.taskIds as string[])].sort(), [...accepted].sort());
    } finally {
      first.process.kill('SIGKILL');
      rmSync(filler, { force: true });
    }
    const second = spawnCli(['serve'], { ...env, NOTIFY_DEMO_DELAY_MS: '0' });
    try {
      const url = await listeningUrl(second.logs);
      const tasks = await finishedTasks(url, accepted);
      assert.deepEqual(
        tasks.map(({ state }) => state),
        accepted.map(() => 'succeeded'),
        'rescued and run after the restart',
      );
    } finally {
      second.process.kill('SIGKILL');
      await second.exited().catch(() => undefined);
    }
  });

  it('a read-only file system at start: a clear error; once writable, the service starts with every task', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const path = join(mountPoint, 'read-only', 'offload.db');
    const first = await testService({ notifyDemoDelay: 5 }, sqliteStore({ path }));
    const url = await first.listen();
    const id = (await notify(url)).body.id!;
    await finished(first.runtime, id);
    // The kernel refuses to make a file system read-only while a file on it is open for
    // writing ("mount point is busy"), so the service is stopped first: as after a restart.
    await first.close();
    run('mount', ['-o', 'remount,ro', mountPoint]);
    try {
      await assert.rejects(
        testService({}, sqliteStore({ path })),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'STORE_OPEN_FAILED');
          assert.ok(error.message.includes(path), error.message);
          assert.match(error.message, /Check that .* written by this process/);
          return true;
        },
      );
    } finally {
      run('mount', ['-o', 'remount,rw', mountPoint]);
    }
    const second = await testService({ notifyDemoDelay: 5 }, sqliteStore({ path }));
    try {
      const again = await second.listen();
      const answer = await notify(again);
      assert.equal(answer.status, 200);
      assert.equal((await finished(second.runtime, answer.body.id!)).state, 'succeeded');
      assert.equal((await second.runtime.get(id))?.state, 'succeeded', 'the earlier task is kept');
    } finally {
      await second.close();
    }
  });

  for (const change of ['deleted', 'replaced'] as const) {
    it(`the database file ${change} under the running service: 503, never an ok that would be lost`, async (t) => {
      if (cannotMount) return t.skip(cannotMount);
      const dir = join(mountPoint, change);
      const path = join(dir, 'offload.db');
      const s: TestService = await testService(
        { notifyDemoDelay: 5 },
        sqliteStore({ path, busyTimeout: 25 }),
      );
      try {
        const url = await s.listen();
        const id = (await notify(url)).body.id!;
        await finished(s.runtime, id);
        if (change === 'deleted') {
          for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
        } else {
          const other = await testService({}, sqliteStore({ path: join(dir, 'other.db') }));
          await other.close();
          renameSync(join(dir, 'other.db'), path);
        }
        for (let i = 0; i < 3; i++) {
          assertUnavailable(await notify(url), new RegExp(`${change}.*restore it, or restart`));
        }
        assert.equal((await fetch(`${url}/readyz`)).status, 503, 'not ready');
        assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the process stays up');
        // Reads go on from the open file.
        assert.equal((await fetch(`${url}/api/tasks/${id}`)).status, 200);
      } finally {
        await s.close();
      }
    });
  }
});
