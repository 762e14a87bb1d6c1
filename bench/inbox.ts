/**
 * The inbox's live streams under load. The service runs as a child process (SQLite on a temporary
 * file unless `--database=memory` or `--database=postgres`), with `INBOX_MAX_STREAMS` raised; this
 * process opens `--streams` (default 10,000) event streams to it over raw sockets, one per
 * recipient, and measures:
 *
 * - the service's resident memory before and after the streams open: the RSS per open stream;
 * - at `--rate` (default 1,000) notifications a second for `--seconds` (default 10), each to a
 *   random connected recipient on the inbox channel, the time from sending the notify request to
 *   the event arriving on its stream (p50, p99, max), and from the notify's answer.
 *
 * `node --conditions=source --import tsx bench/inbox.ts [--quick] [--streams=N] [--rate=N]`
 */
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { spawnCli, listeningUrl } from '../apps/service/test/fixtures/service-harness.js';
import {
  dropSchema,
  machineMarkdown,
  ms3,
  parseArgs,
  percentile,
  publish,
  table,
  tempDatabase,
  uniqueSchema,
  watchdog,
  int,
  type Check,
} from './lib.js';

const args = parseArgs();
const quick = args.quick;
const STREAMS = Number(args.values.get('streams') ?? (quick ? 2000 : 10_000));
const RATE = Number(args.values.get('rate') ?? 1000);
const SECONDS = Number(args.values.get('seconds') ?? (quick ? 3 : 10));
const DATABASE = args.values.get('database') ?? 'sqlite';
watchdog(5 * 60_000, 'bench/inbox');

/** The CPU time the process `pid` used so far, in ms (user and system). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Resolves after `ms` of letting the service settle (GC, allocations of the last batch). */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Stream {
  socket: Socket;
  /** Called with each event's data. */
  received: (data: string) => void;
}

/** Opens one event stream over a raw socket; resolves once its headers and `retry:` arrived. */
function openStream(port: number, recipient: string, onData: (data: string) => void) {
  return new Promise<Stream>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    let buffer = '';
    let open = false;
    socket.on('error', reject);
    socket.on('connect', () =>
      socket.write(
        `GET /api/recipients/${recipient}/inbox/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (!open) {
        if (!buffer.includes('retry:')) return;
        if (!buffer.startsWith('HTTP/1.1 200')) return reject(new Error(buffer.slice(0, 200)));
        open = true;
        buffer = buffer.slice(buffer.indexOf('retry:'));
        resolve({ socket, received: onData });
      }
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (data) onData(data.slice(6));
      }
    });
  });
}

async function main(): Promise<void> {
  const db = DATABASE === 'sqlite' ? tempDatabase('inbox') : null;
  const schema = DATABASE === 'postgres' ? uniqueSchema('inbox') : null;
  const databaseUrl =
    DATABASE === 'memory'
      ? 'memory:'
      : DATABASE === 'postgres'
        ? (process.env.OFFLOAD_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test')
        : `sqlite:${db!.path}`;
  const child = spawnCli(
    ['serve'],
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      ...(schema ? { DATABASE_SCHEMA: schema } : {}),
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      INBOX_MAX_STREAMS: String(STREAMS + 100),
      MAX_CONNECTIONS: String(STREAMS + 1000),
      SHUTDOWN_GRACE: '1',
    },
    { openFiles: STREAMS + 2000 },
  );
  const sockets: Socket[] = [];
  try {
    const started = await Promise.race([
      listeningUrl(child.logs, 30_000),
      child.exited(30_000).then((code) => {
        throw new Error(`the service exited with ${code}: ${child.stderr()}`);
      }),
    ]);
    const url = new URL(started.replace('Server listening at ', ''));
    const port = Number(url.port);
    const pid = child.process.pid!;
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const sentAt = new Map<string, number>();
    const answeredAt = new Map<string, number>();
    const fromSend: number[] = [];
    const fromAnswer: number[] = [];
    const fromStored: number[] = [];
    const notify = (recipient: string, subject: string) =>
      new Promise<void>((resolve, reject) => {
        const body = JSON.stringify({ channel: 'inbox', to: recipient, subject });
        sentAt.set(subject, performance.now());
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/api/notifications/notify',
            agent,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
          (response) => {
            response.resume();
            response.on('end', () => {
              if (response.statusCode !== 200) reject(new Error(`notify: ${response.statusCode}`));
              answeredAt.set(subject, performance.now());
              resolve();
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const onData = (data: string) => {
      const now = performance.now();
      const { subject, deliveredAt } = JSON.parse(data) as {
        subject: string;
        deliveredAt: string;
      };
      // Wall clocks of the same machine: stored by the service, received here.
      fromStored.push(Date.now() - Date.parse(deliveredAt));
      const sent = sentAt.get(subject);
      if (sent !== undefined) fromSend.push(now - sent);
      const answered = answeredAt.get(subject);
      if (answered !== undefined) fromAnswer.push(now - answered);
    };

    // Warm the service up (the first requests compile its routes), then measure its memory.
    for (let i = 0; i < 200; i++) await notify(`warm${i % 10}`, `warm-${i}`);
    await pause(2000);
    const before = rss(pid);
    const opening = performance.now();
    for (let i = 0; i < STREAMS; i += 500) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(500, STREAMS - i) }, (_, j) =>
          openStream(port, `r${i + j}`, onData),
        ),
      );
      sockets.push(...batch.map((s) => s.socket));
    }
    const openMs = performance.now() - opening;
    await pause(2000);
    const after = rss(pid);
    const perStream = (after - before) / STREAMS;

    // Notifications at RATE a second to random connected recipients.
    const total = RATE * SECONDS;
    const sends: Promise<void>[] = [];
    const t0 = performance.now();
    const cpu0 = cpuMs(pid);
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
        for (; sent < due; sent++) {
          const recipient = `r${Math.floor(Math.random() * STREAMS)}`;
          sends.push(notify(recipient, `m${sent}`));
        }
        if (sent >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 2);
    });
    const achieved = (total / (performance.now() - t0)) * 1000;
    await Promise.all(sends);
    const deadline = performance.now() + 10_000;
    while (fromSend.length < total && performance.now() < deadline) await pause(20);
    const afterLoad = rss(pid);
    const cpuPerMessage = (cpuMs(pid) - cpu0) / total;
    agent.destroy();

    const p = (values: number[], q: number) => ms3(percentile(values, q));
    const rows = [
      ['open streams', int(STREAMS)],
      ['time to open them (500 at a time)', `${int(openMs)} ms`],
      [
        'service RSS before / with the streams',
        `${int(before / 2 ** 20)} MB / ${int(after / 2 ** 20)} MB`,
      ],
      ['RSS per open stream', `${(perStream / 1024).toFixed(1)} KB`],
      ['notifications sent', `${int(total)} at ${int(achieved)}/s`],
      ['events received', int(fromSend.length)],
      [
        'notify sent → event, p50 / p99 / max',
        `${p(fromSend, 50)} / ${p(fromSend, 99)} / ${p(fromSend, 100)} ms`,
      ],
      ['notify answered → event, p50 / p99', `${p(fromAnswer, 50)} / ${p(fromAnswer, 99)} ms`],
      [
        'stored in the inbox → event, p50 / p99 (ms clocks)',
        `${p(fromStored, 50)} / ${p(fromStored, 99)} ms`,
      ],
      [
        'service CPU per message (notify, task, store, stream)',
        `${(cpuPerMessage * 1000).toFixed(0)} µs`,
      ],
      ['service RSS after the load', `${int(afterLoad / 2 ** 20)} MB`],
      ['machine load average (1 min) at the end', loadavg()[0]!.toFixed(1)],
    ];
    const p99 = percentile(fromSend, 99);
    const checks: Check[] = [
      {
        target: `${int(STREAMS)} inbox streams open on one process`,
        measured: `${int(sockets.length)} open, ${(perStream / 1024).toFixed(1)} KB RSS each`,
        met: sockets.length === STREAMS,
      },
      {
        target: `a message reaches its client within 50 ms at p99, at ${int(RATE)} messages/s`,
        measured: `p99 ${ms3(p99)} ms (${int(fromSend.length)} of ${int(total)} received)`,
        met: p99 <= 50 && fromSend.length === total,
      },
    ];
    const markdown = [
      `## Inbox streams (${DATABASE}, ${int(RATE)} messages/s)`,
      '',
      machineMarkdown(),
      '',
      table(['measure', 'value'], rows),
    ].join('\n');
    publish(args, { name: 'inbox', markdown, checks });
  } finally {
    for (const socket of sockets) socket.destroy();
    child.process.kill('SIGTERM');
    await child.exited(20_000).catch(() => child.process.kill('SIGKILL'));
    db?.cleanup();
    if (schema) await dropSchema(schema);
  }
}

await main();
