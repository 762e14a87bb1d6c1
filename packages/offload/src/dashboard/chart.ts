import { html, type Html } from './html.js';
import type { MinuteCounts } from './activity.js';

const WIDTH = 600;
const HEIGHT = 120;
const BAR = WIDTH / 60;

/**
 * Succeeded tasks and failed attempts per minute over the last hour as an inline SVG bar chart,
 * drawn on the server: succeeded bars grow up from the middle line, failures down from it. No
 * inline style (the CSP forbids it): colours come from the stylesheet through classes.
 */
export function activityChart(minutes: readonly MinuteCounts[]): Html {
  const peak = Math.max(1, ...minutes.map((m) => Math.max(m.succeeded, m.errors)));
  const half = HEIGHT / 2;
  const scale = (count: number) => Math.round((count / peak) * (half - 4) * 10) / 10;
  const bars = minutes.map((m, i) => {
    const x = i * BAR + 1;
    const up = scale(m.succeeded);
    const down = scale(m.errors);
    const time = new Date(m.at).toISOString().slice(11, 16);
    return html`<g
      ><title>
        ${time} UTC: ${m.succeeded} succeeded, ${m.errors} failed attempts, ${m.failed} failed for
        good</title
      >${up > 0 ? html`<rect class="bar-ok" x="${x}" y="${half - up}" width="${BAR - 2}" height="${up}" />` : ''}${
        down > 0
          ? html`<rect
              class="bar-error"
              x="${x}"
              y="${half}"
              width="${BAR - 2}"
              height="${down}"
            />`
          : ''
      }</g
    >`;
  });
  const total = minutes.reduce(
    (sum, m) => ({
      ok: sum.ok + m.succeeded,
      errors: sum.errors + m.errors,
      failed: sum.failed + m.failed,
    }),
    { ok: 0, errors: 0, failed: 0 },
  );
  return html`<figure class="chart">
    <svg
      viewBox="0 0 ${WIDTH} ${HEIGHT}"
      role="img"
      aria-labelledby="chart-title"
      preserveAspectRatio="none"
    >
      <title id="chart-title">
        Last hour: ${total.ok} succeeded, ${total.errors} failed attempts
      </title>
      <line class="axis" x1="0" y1="${half}" x2="${WIDTH}" y2="${half}" />
      ${bars}
    </svg>
    <figcaption>
      Last hour in this process, per minute (peak ${peak}):
      <span class="ok">${total.ok} succeeded</span>,
      <span class="error">${total.errors} failed attempts</span>, ${total.failed} failed for good.
    </figcaption>
  </figure>`;
}
