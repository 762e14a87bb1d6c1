/**
 * The load generator of bench/http.ts, run in a process of its own (the parent pins it to the
 * core the server does not use). Sends `POST /api/notifications/notify` with no body (the seed's
 * request) and prints one JSON `ClientResult` line to stdout. With `warmUp`, it first sends the
 * same load for that long on the same sockets and prints `measuring` when the measured window
 * begins.
 *
 *   node --conditions=source --import tsx bench/http-client.ts '{"url":"http://127.0.0.1:PORT","mode":"autocannon","connections":50,"duration":10}'
 *
 * Modes:
 * - `autocannon`: autocannon's API, closed loop with `connections` connections; with `rate` it is
 *   autocannon's `overallRate` (`-R`). autocannon paces per connection and per second: each
 *   connection sends back to back until it has sent rate/connections requests in that second,
 *   then waits for the next second, so `-R 2000` arrives as one burst per second.
 * - `paced`: an open-loop client on node:http (keep-alive, at most `connections` sockets) that
 *   sends request i at start + i / rate, evenly spaced; latency is measured from the time the
 *   request was due (so a slow answer that delays the next ones counts against the server too),
 *   and the time on the wire alone is reported as well.
 *
 * Latencies are taken from each response (floating-point ms), not from autocannon's histogram,
 * which keeps whole milliseconds.
 */
import { Agent, request } from 'node:http';
import autocannon from 'autocannon';

export interface ClientOptions {
  url: string;
  mode: 'autocannon' | 'paced';
  connections: number;
  /** Seconds. */
  duration: number;
  /** Requests per second over all connections; required for `paced`. */
  rate?: number;
  /**
   * Seconds of the same load first, not measured: the client's own code gets compiled and its
   * sockets opened before the window, or the first requests' latency would be the client's.
   */
  warmUp?: number;
  /** Date.now() when the measured window is to begin: the client waits, then warms up till then. */
  startAt?: number;
}

export interface ClientResult {
  /** 2xx answers. */
  ok: number;
  /** Answers with another status. */
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Measured duration, s. */
  seconds: number;
  /** 2xx answers per second. */
  rps: number;
  /** Latency of the 2xx answers, ms (paced: from when the request was due). */
  latency: Percentiles;
  /** paced only: from when the request was actually written. */
  wire: Percentiles | null;
  /** The client's CPU time / wall time, as a fraction of one core. */
  cpu: number;
  /** With a rate: [Date.now() at the answer, latency ms] of each 2xx answer. */
  samples: [number, number][] | null;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

const PATH = '/api/notifications/notify';

export function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted.length === 0
      ? NaN
      : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: at(100) };
}

/** performance.now() → Date.now() */
const epoch = Date.now() - performance.now();

async function runAutocannon(options: ClientOptions): Promise<Omit<ClientResult, 'cpu'>> {
  if (options.warmUp) {
    await runAutocannon({ ...options, duration: options.warmUp, warmUp: 0 });
    measuring();
  }
  const latencies: number[] = [];
  const samples: [number, number][] | null = options.rate ? [] : null;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${options.url}${PATH}`,
        method: 'POST',
        connections: options.connections,
        duration: options.duration,
        ...(options.rate ? { overallRate: options.rate } : {}),
        timeout: 10,
      },
      (error, result) => (error ? reject(error as Error) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) {
        latencies.push(responseTime);
        samples?.push([epoch + performance.now(), responseTime]);
      }
    });
  });
  const non2xx = result.non2xx;
  return {
    ok: latencies.length,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    rps: latencies.length / result.duration,
    latency: percentiles(latencies),
    wire: null,
    samples,
  };
}

async function runPaced(options: ClientOptions): Promise<Omit<ClientResult, 'cpu'>> {
  const rate = options.rate;
  if (!rate) throw new Error('paced mode needs a rate');
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  if (options.warmUp) {
    await pacedPhase(options, rate, options.warmUp, agent);
    measuring();
  }
  const result = await pacedPhase(options, rate, options.duration, agent);
  agent.destroy();
  return result;
}

/** Sends `rate` requests a second, evenly spaced, for `duration` seconds, on `agent`'s sockets. */
async function pacedPhase(
  options: ClientOptions,
  rate: number,
  duration: number,
  agent: Agent,
): Promise<Omit<ClientResult, 'cpu'>> {
  const target = new URL(options.url);
  const latencies: number[] = [];
  const wire: number[] = [];
  const samples: [number, number][] = [];
  const total = Math.round(rate * duration);
  const interval = 1000 / rate;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let settled = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const done = () => {
    settled += 1;
    if (settled === total) finish();
  };

  const send = (due: number) => {
    let sent = NaN;
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        method: 'POST',
        path: PATH,
        headers: { 'content-length': '0' },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.once('end', () => {
          const now = performance.now();
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) {
            latencies.push(now - due);
            wire.push(now - sent);
            samples.push([epoch + now, now - due]);
          } else {
            non2xx += 1;
          }
          done();
        });
      },
    );
    req.once('socket', () => {
      sent = performance.now();
    });
    req.once('timeout', () => {
      timeouts += 1;
      req.destroy(new Error('timeout'));
    });
    req.once('error', () => {
      errors += 1;
      done();
    });
    req.end();
  };

  const started = performance.now();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < total && started + next * interval <= now) {
        send(started + next * interval);
        next += 1;
      }
      if (next < total) setImmediate(tick);
      else resolve();
    };
    tick();
  });
  // Answers still in flight get a bounded wait.
  const grace = setTimeout(finish, 15_000);
  await finished;
  clearTimeout(grace);
  const seconds = (performance.now() - started) / 1000;
  return {
    ok: latencies.length,
    non2xx,
    errors,
    timeouts,
    seconds,
    rps: latencies.length / seconds,
    latency: percentiles(latencies),
    wire: percentiles(wire),
    samples,
  };
}

/** The line that tells the parent (runClient in http.ts) the warm-up is over. */
const MEASURING = 'measuring';

let cpuBefore = process.cpuUsage();
let wallBefore = performance.now();

function measuring(): void {
  process.stdout.write(`${MEASURING}\n`);
  cpuBefore = process.cpuUsage();
  wallBefore = performance.now();
}

const options = JSON.parse(process.argv[2] ?? '{}') as ClientOptions;
if (options.startAt) {
  const wait = options.startAt - (options.warmUp ?? 0) * 1000 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}
const result = options.mode === 'paced' ? await runPaced(options) : await runAutocannon(options);
const cpu = process.cpuUsage(cpuBefore);
const output: ClientResult = {
  ...result,
  cpu: (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore),
};
// Exit once the line is written: stdout is a pipe, where writes are asynchronous.
process.stdout.write(`${JSON.stringify(output)}\n`, () => process.exit(0));
