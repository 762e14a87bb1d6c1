/**
 * A small SVG writer for the benchmark charts: one horizontal bar per row, a label on the left, the
 * value written after the bar, Offload's bars in blue and the peers' in grey, an optional goal as a
 * dashed line. No dependency; the output is a plain SVG string that BENCHMARKS.md embeds.
 */

export interface Bar {
  label: string;
  value: number;
  /** Written after the bar; defaults to the value. */
  note?: string;
  /**
   * `ours` blue, `peer` grey; the references, not competitors: `ceiling` dark grey (no work),
   * `floor` light grey (a plain SQLite insert).
   */
  kind: 'ours' | 'peer' | 'ceiling' | 'floor';
}

export interface Chart {
  /** File name in bench/results/, without `.svg`. */
  file: string;
  title: string;
  /** The axis' unit, e.g. `tasks/s`. */
  unit: string;
  bars: Bar[];
  /** A goal drawn as a dashed vertical line. */
  target?: { value: number; label: string };
}

const WIDTH = 820;
const LABEL_WIDTH = 290;
const NOTE_WIDTH = 130;
const BAR_AREA = WIDTH - LABEL_WIDTH - NOTE_WIDTH - 20;
const ROW = 28;
const BAR = 18;
const TITLE_LINE = 18;
const COLOURS: Record<Bar['kind'], string> = {
  ours: '#2563eb',
  peer: '#9ca3af',
  ceiling: '#4b5563',
  floor: '#d1d5db',
};
const LEGEND: [Bar['kind'], string][] = [
  ['ours', 'Offload'],
  ['peer', 'peer'],
  ['ceiling', 'reference (no work)'],
  ['floor', 'reference (a plain SQLite insert)'],
];

function escape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** Splits `text` into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** A round axis maximum at or above `max`: 1, 1.2, 1.5, 2, … or 10 times a power of ten. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10])
    if (step * power >= max) return step * power;
  return 10 * power;
}

function formatTick(value: number): string {
  return value >= 1000 ? value.toLocaleString('en-US') : String(Number(value.toPrecision(3)));
}

export function svgBarChart(chart: Chart): string {
  const title = wrap(chart.title, 100);
  // The title, the legend, then a line for the goal's label when there is one.
  const top = 14 + title.length * TITLE_LINE + 26 + (chart.target ? 16 : 0);
  const height = top + chart.bars.length * ROW + 34; // the axis and its unit below
  const finite = chart.bars.map((b) => b.value).filter(Number.isFinite);
  const max = niceMax(Math.max(...finite, chart.target?.value ?? 0, 0) * 1.05);
  const x = (value: number) => LABEL_WIDTH + (Math.max(0, value) / max) * BAR_AREA;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
  ];
  title.forEach((line, i) =>
    parts.push(
      `<text x="10" y="${14 + (i + 1) * TITLE_LINE - 4}" font-size="14" font-weight="600" fill="#111827">${escape(line)}</text>`,
    ),
  );
  let legendX = 10;
  const legendY = 14 + title.length * TITLE_LINE + 6;
  for (const [kind, name] of LEGEND) {
    if (!chart.bars.some((b) => b.kind === kind)) continue;
    parts.push(
      `<rect x="${legendX}" y="${legendY}" width="12" height="12" fill="${COLOURS[kind]}"/>`,
      `<text x="${legendX + 17}" y="${legendY + 10}" fill="#374151">${escape(name)}</text>`,
    );
    legendX += 30 + name.length * 7;
  }
  // Grid: 3 to 6 steps, whichever makes round numbers.
  const axisY = top + chart.bars.length * ROW + 4;
  const steps = [4, 5, 6, 3].find((n) => Number((max / n).toPrecision(2)) === max / n) ?? 4;
  for (let i = 0; i <= steps; i++) {
    const value = (max * i) / steps;
    const gx = x(value);
    parts.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${axisY}" stroke="#e5e7eb"/>`,
      `<text x="${gx}" y="${axisY + 14}" text-anchor="middle" fill="#6b7280" font-size="11">${formatTick(value)}</text>`,
    );
  }
  parts.push(
    `<text x="${LABEL_WIDTH + BAR_AREA / 2}" y="${axisY + 28}" text-anchor="middle" fill="#6b7280" font-size="11">${escape(chart.unit)}</text>`,
  );
  chart.bars.forEach((bar, i) => {
    const y = top + i * ROW;
    const finiteValue = Number.isFinite(bar.value);
    const end = finiteValue ? x(bar.value) : LABEL_WIDTH;
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${y + BAR / 2 + 4}" text-anchor="end" fill="#111827">${escape(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y}" width="${Math.max(finiteValue ? 1 : 0, end - LABEL_WIDTH).toFixed(1)}" height="${BAR}" fill="${COLOURS[bar.kind]}"/>`,
      `<text x="${end + 6}" y="${y + BAR / 2 + 4}" fill="#111827">${escape(finiteValue ? (bar.note ?? formatTick(bar.value)) : 'n/a')}</text>`,
    );
  });
  if (chart.target) {
    const tx = x(chart.target.value);
    parts.push(
      `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${axisY}" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      `<text x="${tx + 4}" y="${top - 8}" fill="#dc2626" font-size="11">${escape(chart.target.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
