/**
 * The seed as a peer of bench/http.ts: the user's FastAPI endpoint (bench/peers/seed_app.py) run
 * by uvicorn on 127.0.0.1, pinned to a core like the other servers.
 *
 * `prepareSeed()` finds Debian's python3 with fastapi and uvicorn, installing the Debian packages
 * with `apt-get install -y` when they are missing (python3-uvloop and python3-httptools too, which
 * is what `uvicorn[standard]` brings, uvicorn's recommended install); it answers with the reason
 * when the peer cannot run, and the benchmark reports it as skipped.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { settle } from '../lib.js';

/** Debian's interpreter: the packages install there, not into a pyenv or venv `python3`. */
const PYTHON = process.env.OFFLOAD_BENCH_PYTHON ?? '/usr/bin/python3';
const REQUIRED = ['python3-fastapi', 'python3-uvicorn'];
const FAST_PATHS = ['python3-uvloop', 'python3-httptools'];
const PROBE = `
import importlib, json
found = {}
for name in ("fastapi", "uvicorn", "starlette", "uvloop", "httptools"):
    try:
        found[name] = importlib.import_module(name).__version__
    except Exception:
        pass
print(json.dumps(found))
`;

export interface SeedPeer {
  /** Module versions, e.g. `{ fastapi: '0.92.0', uvicorn: '0.17.6', … }`. */
  versions: Record<string, string>;
  /** uvicorn's `--loop` and `--http`. */
  loop: 'uvloop' | 'asyncio';
  http: 'httptools' | 'h11';
}

function probe(): Record<string, string> {
  const run = spawnSync(PYTHON, ['-c', PROBE], { encoding: 'utf8', timeout: 30_000 });
  if (run.status !== 0) return {};
  try {
    return JSON.parse(run.stdout) as Record<string, string>;
  } catch {
    return {};
  }
}

function aptInstall(packages: string[]): string | undefined {
  const run = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (run.error) return run.error.message;
  if (run.status !== 0) return (run.stderr || run.stdout).trim().split('\n').pop();
  return undefined;
}

/** The peer ready to start, or why it cannot run. */
export function prepareSeed(): SeedPeer | { skipped: string } {
  let found = probe();
  if (!found.fastapi || !found.uvicorn) {
    process.stderr.write(`bench/http: installing ${[...REQUIRED, ...FAST_PATHS].join(' ')}…\n`);
    // The fast paths are optional: when they do not install, uvicorn runs on asyncio and h11.
    if (aptInstall([...REQUIRED, ...FAST_PATHS]) !== undefined) {
      const failure = aptInstall(REQUIRED);
      if (failure !== undefined)
        return { skipped: `apt-get install ${REQUIRED.join(' ')}: ${failure}` };
    }
    found = probe();
    if (!found.fastapi || !found.uvicorn)
      return { skipped: `${PYTHON} cannot import fastapi and uvicorn after apt-get install` };
  }
  return {
    versions: found,
    loop: found.uvloop ? 'uvloop' : 'asyncio',
    http: found.httptools ? 'httptools' : 'h11',
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probeServer = createServer();
    probeServer.once('error', reject);
    probeServer.listen(0, '127.0.0.1', () => {
      const address = probeServer.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probeServer.close(() => resolve(port));
    });
  });
}

/** One POST to the endpoint: true on a 2xx answer. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/api/notifications/notify`, { method: 'POST', timeout: 1_000 });
    req.once('response', (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** CPU time (user + system, µs) and resident memory (bytes) of a process, from /proc. */
export function processUsage(pid: number): { cpuMicros: number; rss: number } {
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100/s).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { cpuMicros: ticks * 10_000, rss: rssPages * 4096 };
  } catch {
    return { cpuMicros: NaN, rss: NaN };
  }
}

export interface SeedServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts uvicorn on a free loopback port through `launch` (which pins and tracks the child) and
 * waits until the endpoint answers.
 */
export async function startSeed(
  peer: SeedPeer,
  launch: (command: string, args: string[]) => ChildProcess,
): Promise<SeedServer> {
  const port = await freePort();
  const child = launch(PYTHON, [
    '-m',
    'uvicorn',
    '--app-dir',
    fileURLToPath(new URL('.', import.meta.url)),
    'seed_app:app',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--loop',
    peer.loop,
    '--http',
    peer.http,
    '--log-level',
    'warning',
    '--no-access-log',
  ]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`uvicorn exited with ${child.signalCode ?? `code ${child.exitCode}`}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('uvicorn did not answer within 30 s');
    }
    await settle(100);
  }
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
