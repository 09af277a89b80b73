// System: every edge's health (online, issues) with plots of CPU, disk, archive backlog,
// detector latency and camera uptime over the last day (telemetry history), offline periods;
// and the vm's own archive checks.
import { html, useState, useAsync } from '../lib/html.js';
import { get, enc } from '../lib/api.js';
import { ErrorBox, Loading, Empty, Badge, Page, Dl } from '../lib/ui.js';
import { Plot } from '../lib/plot.js';
import { ago, bytes, dateTime, duration } from '../lib/format.js';
import { onEdge } from '../lib/store.js';

const ISSUES = {
  offline: 'offline', disk_nearly_full: 'disk nearly full', backlog_high: 'archive backlog high',
  no_telemetry: 'no telemetry', parked: 'work parked after a refusal',
};
// The vm answers at most 1000 samples (400 beyond); it keeps the latest ones.
const TELEMETRY_LIMIT = 1000;
const RANGES = { '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 };

export function System() {
  const [range, setRange] = useState('24h');
  const data = useAsync(async () => {
    const [health, devices] = await Promise.all([get('/api/v1/health'), get('/api/v1/devices').then((r) => r.devices)]);
    return { health, devices };
  }, []);
  return html`<${Page} title="System" actions=${html`
      <select value=${range} onChange=${(e) => setRange(e.target.value)} aria-label="Range">
        ${Object.keys(RANGES).map((r) => html`<option value=${r}>Last ${r}</option>`)}</select>
      <button class="btn" onClick=${data.reload}>Refresh</button>`}>
    <${ErrorBox} error=${data.error} />
    ${data.loading && !data.data ? html`<${Loading} />` : null}
    ${data.data ? html`<${Overview} health=${data.data.health} />` : null}
    ${data.data && !data.data.devices.length ? html`<${Empty}>No edge is enrolled yet.</${Empty}>` : null}
    ${(data.data?.devices || []).map((d) => html`<${EdgePanel} key=${d.peer_id} device=${d}
        health=${data.data.health.edges.find((e) => e.peer_id === d.peer_id)} since=${RANGES[range]} />`)}
  </${Page}>`;
}

function Overview({ health }) {
  const archiveIssues = (health.archive_quarantined?.length || 0) + (health.archive_over_quota?.length || 0) + (health.archive_unindexed?.length || 0) + (health.archive_stray_uploads?.unaborted?.length || 0);
  return html`<div class="card overview">
    <div class="row-between"><h2>${onEdge() ? 'This edge' : 'The vm'}</h2><${Badge} kind=${health.status === 'ok' ? 'ok' : 'warn'}>${health.status}</${Badge}></div>
    <${Dl} rows=${[
      ['Up for', duration(health.uptime_secs * 1000)],
      ['Edges', `${health.edges.filter((e) => e.online).length} of ${health.edges.length} online`],
      !onEdge() && ['Archive', archiveIssues ? `${archiveIssues} issue(s)` : 'no issue'],
    ]} />
    ${(health.archive_over_quota || []).map((q) => html`<div class="error small">Camera ${q.camera_id} is over its archive quota (${bytes(q.used_bytes)} of ${bytes(q.quota_bytes)}).</div>`)}
    ${(health.archive_quarantined || []).map((q) => html`<div class="error small">Archived object of event ${q.event_id} missing in S3: ${q.reason}</div>`)}
    ${(health.archive_unindexed || []).map((q) => html`<div class="error small">Event ${q.event_id} in S3 could not be re-indexed: ${q.reason}</div>`)}
  </div>`;
}

function EdgePanel({ device, health, since }) {
  const tele = useAsync(() => get(`/api/v1/devices/${enc(device.peer_id)}/telemetry`, { since: Date.now() - since, limit: TELEMETRY_LIMIT }), [device.peer_id, since]);
  const issues = health?.issues || [];
  const now = Date.now();
  const from = now - since;
  const s = tele.data?.samples || [];
  const off = tele.data?.offline || [];
  const series = (f) => s.map((x) => [x.at_ms, f(x)]);
  const cameras = [...new Set(s.flatMap((x) => x.cameras.map((c) => c.camera_id)))];
  return html`<section class="card edge-panel" data-peer-id=${device.peer_id}>
    <div class="row-between">
      <h2>${device.name}</h2>
      <div>${device.online ? html`<${Badge} kind="ok">online</${Badge}>` : html`<${Badge} kind="bad">offline</${Badge}>`}
        ${issues.filter((i) => i !== 'offline').map((i) => html` <${Badge} kind="warn">${ISSUES[i] || i}</${Badge}>`)}</div>
    </div>
    <div class="muted small"><code>${device.peer_id}</code> · version ${device.agent_version} · last seen ${ago(device.last_seen_ms)}${health?.disk_used_percent != null ? ` · disk ${health.disk_used_percent}% used` : ''}</div>
    <${ErrorBox} error=${tele.error} />
    ${tele.loading && !tele.data ? html`<${Loading} what="Loading telemetry" />` : null}
    ${tele.data ? html`<div class="plots">
      <${Plot} title="CPU" unit="%" max=${100} from=${from} to=${now} offline=${off} points=${series((x) => x.cpu_milli / 10)} />
      <${Plot} title="Disk used" unit="%" max=${100} from=${from} to=${now} offline=${off}
        points=${series((x) => (x.disk_used_bytes + x.disk_free_bytes ? (100 * x.disk_used_bytes) / (x.disk_used_bytes + x.disk_free_bytes) : null))} />
      <${Plot} title="Archive backlog" unit=" objects" from=${from} to=${now} offline=${off} points=${series((x) => x.archive_backlog_objects)} />
      <${Plot} title="Detector latency" unit=" ms" from=${from} to=${now} offline=${off} points=${series((x) => x.detector_ms)} />
      ${cameras.map((id) => html`<${Plot} title=${`Camera ${id} streaming`} unit=" fps" from=${from} to=${now} offline=${off} fmt=${(v) => v.toFixed(1)}
        points=${series((x) => {
          const c = x.cameras.find((c) => c.camera_id === id);
          return c ? (c.state === 'streaming' ? c.fps_milli / 1000 : 0) : null;
        })} />`)}
    </div>
    <${Uptime} samples=${s} cameras=${cameras} />
    ${off.length ? html`<h3>Offline periods</h3><ul class="plain">${off.slice(-20).reverse().map((o) => html`<li>${dateTime(o.from_ms)} → ${o.to_ms ? dateTime(o.to_ms) : 'now'} (${duration((o.to_ms || now) - o.from_ms)})</li>`)}</ul>` : html`<p class="muted small">No offline period in this range.</p>`}` : null}
  </section>`;
}

function Uptime({ samples, cameras }) {
  if (!cameras.length) return null;
  return html`<table class="table uptime"><thead><tr><th>Camera</th><th>Streaming</th></tr></thead><tbody>
    ${cameras.map((id) => {
      const seen = samples.filter((x) => x.cameras.some((c) => c.camera_id === id));
      const up = seen.filter((x) => x.cameras.find((c) => c.camera_id === id).state === 'streaming').length;
      const pct = seen.length ? Math.round((100 * up) / seen.length) : 0;
      return html`<tr><td>${id}</td><td><meter min="0" max="100" value=${pct}></meter> ${pct}% of samples</td></tr>`;
    })}
  </tbody></table>`;
}
