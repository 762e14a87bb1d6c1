import { describe, it } from 'node:test';
import { OTHER_OWNER, OWNER, useStore, type MakeStore } from './harness.js';

export function describeLifecycle(makeStore: MakeStore): void {
  describe('lifecycle', () => {
    const { store } = useStore(makeStore);

    it('open and close are idempotent, ping answers while open', async () => {
      await store.open();
      await store.ping();
      await store.close();
      await store.close();
      await store.open();
      await store.registerWorker(OWNER);
      await store.registerWorker(OTHER_OWNER);
      await store.ping();
    });
  });
}
