/* global process */
/**
 * The app's one runtime and its task definitions. Kept on globalThis: Next may load this module
 * once per bundle (the routes' and instrumentation.js'), and every copy must share one runtime,
 * and the very definitions given to it.
 */
import { createRuntime, defineTask, memoryStore } from 'offload';
import { sqliteStore } from 'offload/sqlite';

function createOffload() {
  const sendWelcome = defineTask({
    name: 'send-welcome',
    async run({ email }, { logger }) {
      logger.info({ email }, 'welcome sent');
      return { to: email };
    },
  });
  const runtime = createRuntime({
    store: process.env.DATABASE_PATH
      ? sqliteStore({ path: process.env.DATABASE_PATH })
      : memoryStore(),
    tasks: [sendWelcome],
  });
  return { runtime, sendWelcome };
}

export const { runtime, sendWelcome } = (globalThis.offloadApp ??= createOffload());
