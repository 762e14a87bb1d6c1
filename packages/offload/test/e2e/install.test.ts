/**
 * The library as a user installs it: the tarball `npm pack` makes of packages/offload, and the
 * folder path, each installed into a fresh app. The entry loads no driver and no framework; a
 * store's driver is the user's own install; the typings check under a Node 20 tsconfig.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
const LIBRARY = join(ROOT, 'packages/offload');
/** What an app that uses the library without them must not get. */
const NOT_BROUGHT = [
  'fastify',
  'express',
  'hono',
  'nodemailer',
  'prom-client',
  'pg',
  'better-sqlite3',
];

const temp = tempDir();
after(() => temp.remove());

/**
 * npm in `cwd`. Installs run no package scripts: the packages linked from this checkout's
 * node_modules (better-sqlite3, typescript) are built already, and a rebuild in place would pull
 * the native driver from under the tests running beside this one.
 */
async function npm(cwd: string, ...args: string[]): Promise<string> {
  const flags = args[0] === 'install' ? ['--ignore-scripts'] : [];
  const { stdout } = await run(
    'npm',
    [...args, ...flags, '--no-audit', '--no-fund', '--prefer-offline'],
    {
      cwd,
      timeout: 120_000,
    },
  );
  return stdout;
}

/** A new app folder with a package.json of its own. */
function makeApp(name: string): string {
  const dir = join(temp.dir, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }),
  );
  return dir;
}

/** Runs an ES module in the app; resolves with what it printed. */
async function node(app: string, code: string): Promise<string> {
  const file = join(app, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  const { stdout } = await run(process.execPath, [file], { cwd: app, timeout: 30_000 });
  return stdout.trim();
}

const QUICKSTART = `
import { createRuntime, defineTask, memoryStore } from 'offload';
const greet = defineTask({ name: 'greet', run: async ({ name }) => \`hello \${name}\` });
const runtime = createRuntime({ store: memoryStore(), tasks: [greet] });
const task = await runtime.enqueue(greet, { name: 'Ada' });
await runtime.drain();
const done = await runtime.get(task.id);
await runtime.stop();
console.log(JSON.stringify({ state: done.state, result: done.result }));
`;

describe('installing the library into a fresh app', () => {
  let tarball: string;

  before(async () => {
    const packed = await npm(LIBRARY, 'pack', '--pack-destination', temp.dir, '--silent');
    tarball = join(temp.dir, packed.trim().split('\n').at(-1)!);
    assert.ok(existsSync(tarball), `npm pack made ${tarball}`);
  });

  it('from the tarball: the entry runs tasks, brings no driver or framework, and says how to add one', async () => {
    const app = makeApp('from-tarball');
    await npm(app, 'install', tarball);
    for (const name of NOT_BROUGHT) {
      assert.ok(!existsSync(join(app, 'node_modules', name)), `${name} is not installed`);
    }
    assert.equal(
      await node(app, QUICKSTART),
      JSON.stringify({ state: 'succeeded', result: 'hello Ada' }),
    );
    const missing = await node(
      app,
      `import { openStore } from 'offload';
       try { await openStore('sqlite:./tasks.db'); } catch (error) { console.log(error.code + ' ' + error.message); }`,
    );
    assert.match(missing, /^DRIVER_NOT_INSTALLED .*npm install better-sqlite3/);

    // The adapters for node:http, Express and Hono load without their framework: they use its
    // types only.
    const adapters = await node(
      app,
      `for (const name of ['node', 'express', 'hono']) {
         const adapter = await import('offload/' + name);
         console.log(name, typeof (adapter.withBackground ?? adapter.offload), typeof adapter.Background);
       }`,
    );
    assert.equal(
      adapters,
      'node function function\nexpress function function\nhono function function',
    );

    // The user's own driver: the store's subpath and openStore use it.
    await npm(app, 'install', join(ROOT, 'node_modules/better-sqlite3'));
    const sqlite = await node(
      app,
      `import { createRuntime, defineTask, openStore } from 'offload';
       import { sqliteStore } from 'offload/sqlite';
       const noop = defineTask({ name: 'noop', run: async () => 'ok' });
       for (const store of [sqliteStore({ path: './a.db' }), await openStore('sqlite:./b.db')]) {
         const runtime = createRuntime({ store, tasks: [noop] });
         const task = await runtime.enqueue(noop, {});
         await runtime.drain();
         console.log((await runtime.get(task.id)).state);
         await runtime.stop();
       }`,
    );
    assert.equal(sqlite, 'succeeded\nsucceeded');
    for (const name of NOT_BROUGHT.filter((name) => name !== 'better-sqlite3')) {
      assert.ok(!existsSync(join(app, 'node_modules', name)), `${name} is still not installed`);
    }
  });

  it('from the tarball: the typings check under a Node 20 tsconfig, without skipLibCheck', async () => {
    const app = makeApp('typings');
    await npm(
      app,
      'install',
      tarball,
      join(ROOT, 'node_modules/typescript'),
      join(ROOT, 'node_modules/@types/node'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'Node16',
          moduleResolution: 'Node16',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
      }),
    );
    writeFileSync(
      join(app, 'index.ts'),
      `import { createRuntime, defineTask, memoryStore, RetryLaterError, type Task } from 'offload';
       import { createServer } from 'node:http';
       import { accepted, withBackground } from 'offload/node';
       const greet = defineTask<{ name: string }>({ name: 'greet', run: async ({ name }) => name });
       const runtime = createRuntime({ store: memoryStore(), tasks: [greet] });
       export async function main(): Promise<Task> {
         await using disposable = runtime;
         void disposable;
         if (Math.random() > 2) throw new RetryLaterError(1000);
         return runtime.enqueue(greet, { name: 'Ada' });
       }
       export const server = createServer(
         withBackground(runtime, async (_req, res, background) => {
           background.add(greet, { name: 'Ada' });
           const [task] = await background.commit();
           accepted(res, task!);
         }),
       );`,
    );
    await run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', app], {
      cwd: app,
      timeout: 60_000,
    }).catch((error: { stdout?: string }) => assert.fail(`tsc failed:\n${error.stdout}`));
  });

  it('from the folder path: the built library imports and runs', async () => {
    const app = makeApp('from-folder');
    await npm(app, 'install', LIBRARY);
    assert.equal(
      await node(app, QUICKSTART),
      JSON.stringify({ state: 'succeeded', result: 'hello Ada' }),
    );
  });
});
