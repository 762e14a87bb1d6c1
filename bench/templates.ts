/**
 * Templates and recipients, measured against today's plain notify.
 *
 * 1. Throughput: the service (`serve --no-runner`: requests are stored, no delivery runs, so that
 *    only the request path is measured; SQLite on a temporary file) in a child process, autocannon
 *    in this one. Runs alternate between a plain notify (one webhook recipient, subject and body in
 *    the request) and a templated notify to one stored recipient by id (`template` and `data`,
 *    `recipients` and `topic`), on the same server process.
 * 2. Bytes stored per request: an in-process service on a fresh SQLite file takes N requests; it is
 *    closed (which checkpoints the WAL) and the growth of the file, over that of an empty run, is
 *    divided by N. Compared: a notify to 100 recipients by id (content rendered once, stored once),
 *    the same 100 deliveries as 100 requests to one recipient each (the content in every delivery),
 *    and a plain notify to 100 webhook URLs.
 *
 * The template and the plain body end with `--footer` characters of fixed text (default 2000), so
 * that the content weighs what a real email's does.
 *
 *   node --conditions=source --import tsx bench/templates.ts [--seconds=10] [--runs=3] [--requests=200] [--footer=2000]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { loadConfig } from '../apps/service/src/config.js';
import { createService } from '../apps/service/src/service.js';
import { int, median, parseArgs, tempDatabase, watchdog } from './lib.js';

const args = parseArgs();
const SECONDS = Number(args.values.get('seconds') ?? 10);
const RUNS = Number(args.values.get('runs') ?? 3);
const REQUESTS = Number(args.values.get('requests') ?? 200);
const CONNECTIONS = 10;
/** Characters of fixed text (a footer) in the template and the plain body: the content's size. */
const FOOTER = 'f'.repeat(Number(args.values.get('footer') ?? 2000));
watchdog((SECONDS * RUNS * 2 + 240) * 1000, 'templates');

const ENV = {
  NOTIFICATION_TOPICS: 'billing',
  WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
  LOG_LEVEL: 'warn',
};
const TEMPLATE = {
  subject: 'Your invoice {{ number }}',
  text:
    'Hello {{ name }},\n\nyour invoice {{ number }} of {{ amount }} is ready.\n\n{% for line in lines %}- {{ line.item }}: {{ line.price }}\n{% endfor %}\nThank you.\n' +
    FOOTER,
};
const DATA = {
  name: 'Ada',
  number: 'INV-2026-0042',
  amount: '€120.00',
  lines: [
    { item: 'Plan', price: '€100.00' },
    { item: 'Seats', price: '€20.00' },
  ],
};
const RENDERED = {
  subject: 'Your invoice INV-2026-0042',
  body:
    'Hello Ada,\n\nyour invoice INV-2026-0042 of €120.00 is ready.\n\n- Plan: €100.00\n- Seats: €20.00\n\nThank you.\n' +
    FOOTER,
};
const hook = (i: number) => `https://hooks.example.com/u/${i}`;

const plain = { channel: 'webhook', to: hook(0), ...RENDERED };
const templated = { recipients: ['u0'], topic: 'billing', template: 'invoice', data: DATA };

/** Puts the template and recipients u0…u99 through `put`. */
async function setUp(put: (url: string, body: object) => Promise<void>): Promise<void> {
  await put('/api/templates/invoice', TEMPLATE);
  for (let i = 0; i < 100; i++) await put(`/api/recipients/u${i}`, { webhook: hook(i) });
}

interface Rates {
  plain: number[];
  templated: number[];
  /** CPU µs of the server per request, per run. */
  cpu: { plain: number[]; templated: number[] };
}

/** User and system CPU time of process `pid` so far, in µs (Linux: /proc/<pid>/stat). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; in clock ticks.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

async function throughput(): Promise<Rates> {
  const db = tempDatabase('templates-http');
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', 'apps/service/src/main.ts', 'serve', '--no-runner'],
    {
      env: {
        ...process.env,
        ...ENV,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: `sqlite:${db.path}`,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const match = /Server listening at (http:\/\/[^"]+)"/.exec(text);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)));
    });
    child.stdout!.resume();
    await setUp(async (path, body) => {
      const response = await fetch(url + path, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (response.status !== 200) throw new Error(`${path}: ${await response.text()}`);
    });
    // CPU time of the server per request: unlike requests per second, it does not move with
    // what else the machine runs (another process's load only stretches the wall time).
    const cpu = { plain: [] as number[], templated: [] as number[] };
    const run = async (body: object, seconds: number, into?: number[]): Promise<number> => {
      const before = cpuMicros(child.pid!);
      const result = await autocannon({
        url: `${url}/api/notifications/notify`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        connections: CONNECTIONS,
        duration: seconds,
      });
      if (result.non2xx > 0 || result.errors > 0) {
        throw new Error(`${result.non2xx} non-2xx answers and ${result.errors} errors`);
      }
      into?.push((cpuMicros(child.pid!) - before) / result.requests.total);
      return result.requests.average;
    };
    await run(plain, 2);
    await run(templated, 2);
    const rates = { plain: [] as number[], templated: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      rates.plain.push(await run(plain, SECONDS, cpu.plain));
      rates.templated.push(await run(templated, SECONDS, cpu.templated));
    }
    return { ...rates, cpu };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    db.cleanup();
  }
}

function fileBytes(path: string): number {
  let total = 0;
  for (const suffix of ['', '-wal'])
    if (existsSync(path + suffix)) total += statSync(path + suffix).size;
  return total;
}

/** Bytes the database grows by, per request, for `requests(i)` sent `count` times. */
async function bytesPerRequest(body: (i: number) => object[], count: number): Promise<number> {
  const grow = async (n: number): Promise<number> => {
    const db = tempDatabase('templates-bytes');
    try {
      const config = loadConfig({ ...ENV, PORT: '0', DATABASE_URL: `sqlite:${db.path}` });
      const service = await createService(config, {
        logger: pino({ level: 'warn' }, pino.destination(2)),
        processMetrics: false,
        runner: false,
      });
      await service.app.ready();
      await setUp(async (url, payload) => {
        await service.app.inject({ method: 'PUT', url, payload });
      });
      for (let i = 0; i < n; i++) {
        for (const payload of body(i)) {
          const answer = await service.app.inject({
            method: 'POST',
            url: '/api/notifications/notify',
            payload,
          });
          if (answer.statusCode !== 200) throw new Error(answer.body);
        }
      }
      await service.close();
      await service.store.close();
      return fileBytes(db.path);
    } finally {
      db.cleanup();
    }
  };
  const empty = await grow(0);
  return ((await grow(count)) - empty) / count;
}

const rates = await throughput();
const byId = await bytesPerRequest(
  () => [{ ...templated, recipients: Array.from({ length: 100 }, (_, i) => `u${i}`) }],
  REQUESTS,
);
const copies = await bytesPerRequest(
  () => Array.from({ length: 100 }, (_, i) => ({ ...plain, to: hook(i) })),
  Math.max(1, Math.round(REQUESTS / 10)),
);
const plainMany = await bytesPerRequest(
  () => [{ ...plain, to: Array.from({ length: 100 }, (_, i) => hook(i)) }],
  REQUESTS,
);
const p = median(rates.plain);
const t = median(rates.templated);
console.log(
  `## Templates and recipients (${new Date().toISOString().slice(0, 10)}, Node ${process.version})`,
);
console.log(
  `throughput, ${CONNECTIONS} connections, ${RUNS} runs of ${SECONDS} s each, alternating, serve --no-runner, SQLite file`,
);
console.log(
  `- plain notify (one webhook URL):            ${int(p)} req/s (runs ${rates.plain.map(int).join(', ')})`,
);
console.log(
  `- templated notify to one recipient by id:   ${int(t)} req/s (runs ${rates.templated.map(int).join(', ')})`,
);
console.log(`- ratio: ${((t / p) * 100).toFixed(1)} %`);
const cp = median(rates.cpu.plain);
const ct = median(rates.cpu.templated);
console.log(
  `server CPU per request: plain ${int(cp)} µs (runs ${rates.cpu.plain.map(int).join(', ')}), templated ${int(ct)} µs (runs ${rates.cpu.templated.map(int).join(', ')}); capacity ratio (plain CPU / templated CPU): ${((cp / ct) * 100).toFixed(1)} %`,
);
console.log('bytes stored per 100 deliveries (database growth after checkpoint, per request)');
console.log(`- one notify to 100 recipients by id, templated: ${int(byId)} B`);
console.log(`- one notify to 100 webhook URLs (plain):        ${int(plainMany)} B`);
console.log(
  `- 100 notifies to one recipient each (a copy of the content in each delivery): ${int(copies)} B`,
);
