/* global process */
/**
 * Stops the runtime on SIGTERM and SIGINT: running tasks finish, or are handed back, before the
 * process exits. Next handles these signals itself (and exits at once) unless the server runs
 * with NEXT_MANUAL_SIG_HANDLE=true, as it should with Offload.
 */
export async function register() {
  if (process.env.NEXT_RUNTIME !== 'nodejs') return;
  const { runtime } = await import('./lib/offload.js');
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => void runtime.stop().finally(() => process.exit(0)));
  }
}
