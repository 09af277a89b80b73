// Cameras: each camera's live state, fps, resolution, last frame, error reason, and a fresh
// picture, sealed by its edge and decrypted here on demand.
import { html, useState, useAsync } from '../lib/html.js';
import { get, enc } from '../lib/api.js';
import { fetchDecrypted, objectUrl, revoke } from '../lib/age.js';
import { ErrorBox, Loading, Empty, Badge, Page, stateKind } from '../lib/ui.js';
import { ago, dateTime } from '../lib/format.js';
import { isAdmin } from '../lib/store.js';

const REASONS = {
  unauthorized: 'the camera refused the user name or password',
  unreachable: 'the camera cannot be reached',
  not_h264: 'the stream is not H.264',
  not_found: 'the stream path does not exist',
  other: 'another error',
};

export function Cameras() {
  const cams = useAsync(() => get('/api/v1/cameras').then((r) => r.cameras), []);
  const admin = isAdmin();
  return html`<${Page} title="Cameras" actions=${html`<button class="btn" onClick=${cams.reload}>Refresh</button>
      ${admin ? html`<a class="btn primary" href="#/camera-new">Add a camera</a>` : null}`}>
    <${ErrorBox} error=${cams.error} />
    ${cams.loading && !cams.data ? html`<${Loading} />` : null}
    ${cams.data && !cams.data.length ? html`<${Empty}>No cameras yet.${admin ? html` <a href="#/camera-new">Add one</a> from what your edges found.` : null}</${Empty}>` : null}
    <div class="camera-grid">
      ${(cams.data || []).map((c) => html`<${CameraCard} c=${c} admin=${admin} />`)}
    </div>
  </${Page}>`;
}

function CameraCard({ c, admin }) {
  const [snap, setSnap] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function picture() {
    setBusy(true);
    setError(null);
    try {
      const { bytes, headers } = await fetchDecrypted(`/api/v1/cameras/${enc(c.id)}/snapshot`);
      if (snap) revoke(snap.url);
      setSnap({ url: objectUrl(new Blob([bytes], { type: 'image/jpeg' })), at: Number(headers.get('X-Guardian-Taken-At-Ms')) || Date.now() });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  const state = c.enabled ? c.state || 'unknown' : 'disabled';
  return html`<article class="card camera-card" data-camera-id=${c.id}>
    <div class="camera-pic">
      ${snap ? html`<img src=${snap.url} alt=${'Now at ' + c.name} />` : html`<div class="img-placeholder"><button class="btn small" onClick=${picture} disabled=${busy}>${busy ? 'Decrypting…' : 'Show a fresh picture'}</button></div>`}
    </div>
    <div class="camera-body">
      <div class="row-between"><h2>${c.name}</h2><${Badge} kind=${stateKind(state)}>${state}</${Badge}></div>
      <div class="muted small">${c.id} · on ${c.edge_name || c.edge.slice(0, 12) + '…'} ${c.edge_online ? '' : html`<${Badge} kind="bad">edge offline</${Badge}>`}</div>
      <div class="stats">
        <span><b>${c.fps != null ? c.fps.toFixed(1) : '—'}</b> fps</span>
        <span><b>${c.width ? `${c.width}×${c.height}` : '—'}</b></span>
        <span><b>${c.bitrate_kbps ?? '—'}</b> kbit/s</span>
        <span title=${dateTime(c.last_frame_ms)}>last frame <b>${ago(c.last_frame_ms)}</b></span>
      </div>
      ${c.reason || c.last_error ? html`<div class="error small">${REASONS[c.reason] || ''}${c.last_error ? html`<div class="muted">${c.last_error}</div>` : null}</div>` : null}
      ${c.config_state !== 'applied' ? html`<div class="small"><${Badge} kind=${c.config_state === 'refused' ? 'bad' : 'warn'}>config ${c.config_state}</${Badge}> ${c.config_refused_reason || ''}</div>` : null}
      <${ErrorBox} error=${error} />
      <div class="row-end">
        ${snap ? html`<span class="muted small">taken ${ago(snap.at)}</span><button class="btn small" onClick=${picture} disabled=${busy}>Refresh picture</button>` : null}
        ${admin ? html`<a class="btn small" href=${'#/camera/' + enc(c.id)}>Settings</a>` : null}
      </div>
    </div>
  </article>`;
}
