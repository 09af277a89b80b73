// Small SVG line plots (no library, no inline style): a series over time, offline periods shaded.
import { html } from './html.js';
import { hourTitle } from './format.js';

/**
 * points: [[ms, value|null]], from/to: the time range, max: the y range top (auto when absent),
 * offline: [{from_ms, to_ms}], unit: shown beside the last value.
 */
export function Plot({ title, points, from, to, max, unit = '', offline = [], fmt = (v) => String(Math.round(v)) }) {
  const W = 600, H = 120, P = 4;
  const values = points.map((p) => p[1]).filter((v) => v != null);
  const top = max ?? Math.max(1, ...values) * 1.1;
  const x = (t) => P + ((t - from) / Math.max(1, to - from)) * (W - 2 * P);
  const y = (v) => H - P - (Math.min(v, top) / top) * (H - 2 * P);
  let d = '';
  let pen = false;
  for (const [t, v] of points) {
    if (v == null) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  const last = values.length ? values[values.length - 1] : null;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => from + f * (to - from));
  return html`<figure class="plot">
    <figcaption><span>${title}</span><span class="plot-last">${last == null ? 'no data' : fmt(last) + unit}</span></figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label=${title}>
      ${offline.map((o) => html`<rect class="plot-offline" x=${x(Math.max(from, o.from_ms))} y="0" width=${Math.max(1, x(Math.min(to, o.to_ms ?? to)) - x(Math.max(from, o.from_ms)))} height=${H}><title>offline</title></rect>`)}
      <line class="plot-axis" x1=${P} x2=${W - P} y1=${H - P} y2=${H - P} />
      <line class="plot-grid" x1=${P} x2=${W - P} y1=${y(top / 2)} y2=${y(top / 2)} />
      <path class="plot-line" d=${d} />
    </svg>
    <div class="plot-ticks" aria-hidden="true">${ticks.map((t) => html`<span>${hourTitle(t)}</span>`)}</div>
  </figure>`;
}
