/**
 * Summarises a V8 CPU profile (from `node --cpu-prof`): the top frames by self time, and the
 * project's own functions (src/) by inclusive time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/enqueue.ts --store=sqlite
 *   node --conditions=source --import tsx bench/profile-summary.ts /tmp/prof/<file>.cpuprofile [--top=20]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from './lib.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const files = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const topArg = process.argv.find((arg) => arg.startsWith('--top='));
const TOP = topArg ? Number(topArg.slice('--top='.length)) : 20;
if (files.length === 0) throw new Error('give the path of a .cpuprofile file');
const root = fileURLToPath(new URL('..', import.meta.url));

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const path = url.startsWith('file://') ? relative(root, fileURLToPath(url)) : url;
  return `${name} ${path}:${lineNumber + 1}`;
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    total += delta;
    const node = byId.get(id)!;
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + delta);
    // Inclusive: every distinct frame on the stack, counted once per sample.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = frameName(byId.get(at)!);
      if (seen.has(frame)) continue;
      seen.add(frame);
      inclusive.set(frame, (inclusive.get(frame) ?? 0) + delta);
    }
  });

  const pct = (us: number) => `${((us / total) * 100).toFixed(1)}%`;
  const msOf = (us: number) => (us / 1000).toFixed(0);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  const own = [...inclusive.entries()]
    .filter(([name]) => name.includes(' src/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, TOP);
  process.stdout.write(
    [
      `#### ${relative(process.cwd(), file)} (${msOf(total)} ms sampled)`,
      '',
      'Top self time:',
      '',
      table(
        ['self ms', 'self %', 'frame'],
        top.map(([name, us]) => [msOf(us), pct(us), `\`${name}\``]),
      ),
      '',
      'Project functions (src/), inclusive time:',
      '',
      table(
        ['total ms', 'total %', 'frame'],
        own.map(([name, us]) => [msOf(us), pct(us), `\`${name}\``]),
      ),
      '',
    ].join('\n'),
  );
}
