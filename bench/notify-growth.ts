/**
 * How much does the SQLite database grow per byte of notify requests? The service (default
 * configuration, SQLite on a temporary file, runner on, log level warn) listens on 127.0.0.1;
 * a client on 8 keep-alive connections sends `POST /api/notifications/notify` requests of about
 * 10.8 KB each (a 10,000-character body to 100 log recipients), 10.9 MB in all, or as many as fit
 * in 60 s. Then the service is closed (which checkpoints the WAL) and the script reports the bytes
 * sent, the growth of the database file (with its WAL), the sum of the stored payloads and the
 * amplification (growth / bytes sent).
 *
 * `--body=0` sends the same requests without subject and body (about 1.1 KB each): what the
 * per-recipient tasks cost alone.
 *
 *   node --conditions=source --import tsx bench/notify-growth.ts [--total=BYTES] [--seconds=N] [--body=CHARS]
 */
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../apps/service/src/config.js';
import { createService } from '../apps/service/src/service.js';
import { int, parseArgs, tempDatabase, watchdog } from './lib.js';

const args = parseArgs();
const TOTAL = Number(args.values.get('total') ?? 10.9e6);
const SECONDS = Number(args.values.get('seconds') ?? 60);
const BODY = Number(args.values.get('body') ?? 9_500);
const CONNECTIONS = 8;
watchdog((SECONDS + 60) * 1000, 'notify-growth');

const request = JSON.stringify({
  channel: 'log',
  to: Array.from({ length: 100 }, (_, i) => `user-${String(i).padStart(3, '0')}`),
  ...(BODY > 0 ? { subject: 'Your weekly report', body: 'x'.repeat(BODY) } : {}),
});
const requestBytes = Buffer.byteLength(request);

/** Decimal megabytes, as the sizes of requests are usually given. */
function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

function fileBytes(path: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) {
    if (existsSync(path + suffix)) total += statSync(path + suffix).size;
  }
  return total;
}

const db = tempDatabase('notify-growth');
try {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: `sqlite:${db.path}`,
    LOG_LEVEL: 'warn',
  });
  const service = await createService(config, {
    logger: pino({ level: 'warn' }, pino.destination(2)),
    processMetrics: false,
  });
  const url = new URL(await service.listen());
  const before = fileBytes(db.path);

  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const post = () =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/api/notifications/notify',
          headers: { 'content-type': 'application/json', 'content-length': requestBytes },
        },
        (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(request);
    });

  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  let sent = 0;
  let accepted = 0;
  const statuses = new Map<number, number>();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (sent < TOTAL && performance.now() < deadline) {
        sent += requestBytes;
        const status = await post();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 200) accepted += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  const during = fileBytes(db.path) - before;
  await service.close();
  const after = fileBytes(db.path) - before;

  const reader = new Database(db.path, { readonly: true });
  const { rows, payloads } = reader
    .prepare(
      'SELECT count(*) AS rows, coalesce(sum(length(CAST(payload AS BLOB))), 0) AS payloads FROM offload_tasks',
    )
    .get() as { rows: number; payloads: number };
  reader.close();

  const lines = [
    `request: ${int(requestBytes)} bytes (100 log recipients, a ${int(BODY)}-character body)`,
    `sent: ${int(sent)} bytes in ${int(sent / requestBytes)} requests over ${elapsed.toFixed(1)} s; answers: ${[...statuses].map(([s, n]) => `${s}×${int(n)}`).join(', ')}`,
    `tasks stored: ${int(rows)}; payloads: ${mb(payloads)} (${int(payloads / Math.max(1, accepted))} bytes a request)`,
    `database + WAL growth: ${mb(during)} when the last answer came, ${mb(after)} after close`,
    `amplification (growth after close / bytes sent): ${(after / sent).toFixed(1)}×`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  db.cleanup();
}
