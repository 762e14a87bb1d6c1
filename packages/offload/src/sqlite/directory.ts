import { mkdirSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Creates the directory `dir` and its missing parents, one level at a time.
 *
 * Not `mkdirSync(dir, { recursive: true })`: in Node 20 that loops forever, at full CPU and deaf
 * to signals, when a directory answers ENOENT to its own creation (any path under /proc does), so
 * a mistyped path hung the process instead of failing it. Here the walk up ends at the first
 * directory that exists (at worst the root) and each missing level is created once, so an error
 * is thrown at once, naming the directory that could not be made.
 */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    const found = entry(at);
    if (found?.isDirectory()) break;
    if (found) {
      throw new Error(`could not create the directory ${resolve(dir)}: ${at} is not a directory`);
    }
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (error) {
      // Another process (a second worker starting) may have created it meanwhile.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && entry(path)?.isDirectory()) {
        continue;
      }
      throw new Error(`could not create the directory ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/** What is at `path`, or undefined when nothing is (ENOTDIR too: a file on the way up is found next). */
function entry(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new Error(`could not create the directory ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
