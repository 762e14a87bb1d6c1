/**
 * A test-only hook for `npm run soak`, loaded into the service process with `--import` (never by
 * production code): on SIGUSR2 it collects garbage (the process runs with --expose-gc) and appends
 * one JSON line to SOAK_PROBE_FILE: heap after GC and the active resources by type (timers,
 * sockets, handles), so that a timer or listener leak shows as a growing count.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.SOAK_PROBE_FILE;
if (file !== undefined) {
  process.on('SIGUSR2', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const resources: Record<string, number> = {};
    for (const type of process.getActiveResourcesInfo())
      resources[type] = (resources[type] ?? 0) + 1;
    const { heapUsed, external } = process.memoryUsage();
    appendFileSync(file, `${JSON.stringify({ at: Date.now(), heapUsed, external, resources })}\n`);
  });
}
