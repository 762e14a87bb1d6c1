import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Running from the TypeScript sources (under tsx) rather than from dist/. */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * Starts a worker thread on `module`, the URL of a built module (`new URL('./x.js',
 * import.meta.url)`). From the TypeScript sources it starts the `.ts` module through a shim that
 * registers tsx in the thread first.
 */
export function startThread(module: URL, options: WorkerOptions = {}): Worker {
  if (!FROM_SOURCES) return new Worker(module, options);
  const source = module.href.replace(/\.js$/, '.ts');
  return new Worker(new URL('./tsx-thread.mjs', import.meta.url), {
    ...options,
    argv: [...(options.argv ?? []), source],
  });
}
