/**
 * Runs every benchmark, each in its own child process (so memory is not shared), and prints a
 * Markdown summary to stdout; writes it to bench/results/latest.md too, and each script's charts
 * to bench/results/NAME.svg (the ones BENCHMARKS.md embeds). `--quick` runs each scenario once,
 * briefly, as a smoke test, and writes its charts to bench/results/quick/ instead. A peer that
 * cannot start is reported by its script as skipped; a script that fails is reported as failed and
 * the others still run.
 *
 *   node --conditions=source --import tsx bench/run.ts [--quick] [--only=NAME,NAME]     (npm run bench)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineMarkdown, parseArgs, targetsMarkdown, type BenchResult } from './lib.js';

const args = parseArgs();
const here = fileURLToPath(new URL('.', import.meta.url));

/** Each script, and how long it may take before it is killed (full run; every script has its own watchdog too). */
const scripts: [name: string, limitMs: number][] = [
  ['sqlite-baseline', 150_000],
  ['enqueue', 300_000],
  ['drain', 480_000],
  ['pg-drain', 1_050_000],
  ['pg-scale', 900_000],
  ['latency', 200_000],
  ['growth', 1_150_000],
  ['http', 1_850_000],
];
const only = args.values.get('only')?.split(',');
const unknown = only?.filter((name) => !scripts.some(([known]) => known === name)) ?? [];
if (unknown.length)
  throw new Error(
    `--only: unknown script ${unknown.join(', ')}; one of ${scripts.map(([n]) => n).join(', ')}`,
  );

function runScript(name: string, limitMs: number): Promise<BenchResult> {
  const json = join(tmpdir(), `offload-bench-${process.pid}-${name}.json`);
  const argv = [
    '--conditions=source',
    '--import',
    'tsx',
    join(here, `${name}.ts`),
    `--json=${json}`,
    ...(args.quick ? ['--quick'] : []),
  ];
  return new Promise((resolve, reject) => {
    // stdout is the child's Markdown, collected through the JSON file; stderr goes straight through.
    // A group of its own, so that the limit kills the servers and workers it started too.
    const child = spawn(process.execPath, argv, {
      stdio: ['ignore', 'ignore', 'inherit'],
      detached: true,
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, limitMs);
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
  if (only && !only.includes(name)) continue;
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
  `- command: \`node --conditions=source --import tsx bench/run.ts${args.quick ? ' --quick' : ''}\` (each script in its own process; ${((Date.now() - started) / 1000).toFixed(0)} s in all)`,
  '',
  '## Targets',
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
const chartDir = args.quick ? join(dir, 'quick') : dir;
mkdirSync(chartDir, { recursive: true });
for (const chart of results.flatMap((r) => r.charts ?? [])) {
  writeFileSync(join(chartDir, `${chart.file}.svg`), chart.svg);
  process.stderr.write(`bench: wrote ${join(chartDir, `${chart.file}.svg`)}\n`);
}
