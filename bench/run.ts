/**
 * Runs every benchmark, each in its own child process (so memory is not shared), and prints a
 * Markdown summary to stdout; writes it to bench/results/latest.md too.
 *
 *   node --import tsx bench/run.ts [--quick]          (npm run bench)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineMarkdown, parseArgs, targetsMarkdown, type BenchResult } from './lib.js';

const args = parseArgs();
const here = fileURLToPath(new URL('.', import.meta.url));

/** Each script, and how long it may take before it is killed (full run). */
const scripts: [name: string, limitMs: number][] = [
  ['enqueue', 300_000],
  ['drain', 480_000],
  ['pg-drain', 600_000],
  ['latency', 200_000],
  ['growth', 360_000],
  ['http', 900_000],
];

function runScript(name: string, limitMs: number): Promise<BenchResult> {
  const json = join(tmpdir(), `offload-bench-${process.pid}-${name}.json`);
  const argv = [
    '--import',
    'tsx',
    join(here, `${name}.ts`),
    `--json=${json}`,
    ...(args.quick ? ['--quick'] : []),
  ];
  return new Promise((resolve, reject) => {
    // stdout is the child's Markdown, collected through the JSON file; stderr goes straight through.
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`bench/${name}.ts exited with ${signal ?? `code ${code}`}`);
        resolve(JSON.parse(readFileSync(json, 'utf8')) as BenchResult);
      } catch (error) {
        reject(error);
      } finally {
        rmSync(json, { force: true });
      }
    });
  });
}

const started = Date.now();
const sections: string[] = [];
const results: BenchResult[] = [];
for (const [name, limitMs] of scripts) {
  process.stderr.write(`bench: running ${name}${args.quick ? ' (quick)' : ''}…\n`);
  const begun = Date.now();
  try {
    const result = await runScript(name, limitMs);
    results.push(result);
    sections.push(result.markdown);
  } catch (error) {
    sections.push(`### ${name}\n\nFAILED: ${(error as Error).message}\n`);
  }
  process.stderr.write(`bench: ${name} took ${((Date.now() - begun) / 1000).toFixed(1)} s\n`);
}

const checks = results.flatMap((r) => r.checks);
const summary = [
  `# Offload benchmarks${args.quick ? ' (quick)' : ''}`,
  '',
  machineMarkdown(),
  `- command: \`node --import tsx bench/run.ts${args.quick ? ' --quick' : ''}\` (each script in its own process; ${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
  '',
  '## Targets (issues 2, 3 and 4)',
  '',
  targetsMarkdown(checks),
  '',
  '## Results',
  '',
  ...sections,
].join('\n');

process.stdout.write(`${summary}\n`);
const dir = join(here, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.md'), `${summary}\n`);
