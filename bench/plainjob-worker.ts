/**
 * One plainjob worker process, as plainjob's README sets them up for high throughput (one forked
 * worker per CPU on the same database). Started by bench/drain.ts; waits for "go", drains no-op
 * jobs until told "stop".
 */
import Database from 'better-sqlite3';
import { better, defineQueue, defineWorker } from 'plainjob';

const path = process.argv[2];
if (!path || !process.send)
  throw new Error('start this through bench/drain.ts (needs a database path and an IPC channel)');

const quiet = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
const queue = defineQueue({ connection: better(new Database(path)), logger: quiet });
const worker = defineWorker('bench.noop', () => undefined, {
  queue,
  logger: quiet,
  pollIntervall: 10,
});

let running: Promise<void> | undefined;
process.on('message', (message: string) => {
  if (message === 'go') {
    running = worker.start();
  } else if (message === 'stop') {
    void (async () => {
      await worker.stop();
      await running;
      queue.close();
      process.exit(0);
    })();
  }
});
process.send('ready');
