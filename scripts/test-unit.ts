/**
 * `npm run test:unit`: the tests that need no server and start no process, in about a minute.
 * A test file is left out when it is under an `e2e` folder, talks to PostgreSQL (imports
 * `pg-helpers` or `pg`), starts child processes or mounts a file system.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const NEEDS_MORE = /from 'node:child_process'|spawnCli|pg-helpers|from 'pg'|'mount'/;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === 'e2e' || entry.name === 'fixtures' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const roots = ['packages', 'apps'].flatMap((top) =>
  readdirSync(join(ROOT, top)).map((name) => join(ROOT, top, name, 'test')),
);
const files = roots
  .flatMap((dir) => {
    try {
      return testFiles(dir);
    } catch {
      return [];
    }
  })
  .filter((file) => !NEEDS_MORE.test(readFileSync(file, 'utf8')))
  .map((file) => relative(ROOT, file));

const child = spawn(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=2', ...files],
  { cwd: ROOT, stdio: 'inherit' },
);
child.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
