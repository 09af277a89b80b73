// One event: the clip decrypted as it streams into a <video> (MSE, or a blob), seek, download
// of the decrypted MP4, and the evidence: CIDs, the edge-signed manifest verified here
// (ed25519), the archive status, the second look's verdict, the zones.
import { html, useState, useEffect, useRef, useAsync } from '../lib/html.js';
import { get, enc } from '../lib/api.js';
import { eventById, setReviewed } from '../lib/events.js';
import { playSealedClip } from '../lib/player.js';
import { saveBlob, revoke } from '../lib/age.js';
import { verifyManifest } from '../lib/evidence.js';
import { ErrorBox, Loading, Badge, Page, Dl } from '../lib/ui.js';
import { dateTime, duration, score, bytes, cap } from '../lib/format.js';
import { toast } from '../lib/store.js';

export function Event({ arg: id }) {
  const ev = useAsync(() => eventById(id), [id]);
  if (ev.loading) return html`<${Page} title="Event"><${Loading} /></${Page}>`;
  if (ev.error) return html`<${Page} title="Event"><${ErrorBox} error=${ev.error} /></${Page}>`;
  return html`<${EventView} ev=${ev.data} setEv=${ev.setData} />`;
}

function EventView({ ev, setEv }) {
  const reviewed = !!ev.reviewed_at_ms;
  async function toggle() {
    try {
      const r = await setReviewed(ev.event_id, !reviewed);
      setEv({ ...ev, reviewed_at_ms: r.reviewed_at_ms });
    } catch (e) {
      toast(e.message, 'bad');
    }
  }
  return html`<${Page} title=${`${cap(ev.category)} · ${ev.camera_id}`}
      actions=${html`<a class="btn" href="#/review">← Review</a>
        <button class=${'btn' + (reviewed ? ' done' : '')} onClick=${toggle}>${reviewed ? '✓ Reviewed' : 'Mark reviewed'}</button>`}>
    <div class="event-layout">
      <div class="event-player">
        <${Player} ev=${ev} />
        <${Dl} rows=${[
          ['Started', dateTime(ev.started_at_ms)],
          ['Length', duration(ev.ended_at_ms - ev.started_at_ms)],
          ['Label', `${cap(ev.category)} ${score(ev.score_milli)}`],
          ['Zones', ev.zones?.length ? ev.zones.join(', ') : 'none'],
          ['Second look', ev.verification ? html`<${Badge} kind=${ev.verification.verdict === 'confirmed' ? 'ok' : ev.verification.verdict === 'rejected' ? 'bad' : 'neutral'}>${ev.verification.verdict}</${Badge}> ${score(ev.verification.score_milli)} by ${ev.verification.model}` : 'none'],
          ev.truncated && ['Clip', 'ends early (recovered after the edge stopped)'],
        ]} />
      </div>
      <${Evidence} ev=${ev} />
    </div>
  </${Page}>`;
}

function Player({ ev }) {
  const video = useRef(null);
  const [status, setStatus] = useState({ received: 0, mode: null, done: false });
  const [blob, setBlob] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (ev.state === 'open' || !ev.clip_cid) return;
    const ctl = new AbortController();
    const made = [];
    const revokeLater = () => setTimeout(() => made.forEach(revoke), 0);
    setError(null);
    setBlob(null);
    playSealedClip(video.current, `/api/v1/events/${enc(ev.event_id)}/clip`, { signal: ctl.signal, onProgress: setStatus, onUrl: (u) => made.push(u) }).then(
      (r) => setBlob(r.blob),
      (e) => e.name !== 'AbortError' && setError(e),
    );
    const v = video.current;
    return () => {
      ctl.abort();
      if (v && v.src) {
        v.removeAttribute('src');
        v.load();
      }
      revokeLater();
    };
  }, [ev.event_id]);

  const seek = (d) => {
    const v = video.current;
    if (v) v.currentTime = Math.max(0, Math.min((v.duration || 0) - 0.05, v.currentTime + d));
  };
  const download = () => saveBlob(blob, `${ev.camera_id}-${new Date(ev.started_at_ms).toISOString().replace(/[:.]/g, '-')}-${ev.event_id}.mp4`);

  return html`<div class="player card">
    ${ev.state === 'open' ? html`<div class="notice">Still recording: the clip can be played once the event ends.</div>` : null}
    ${!ev.clip_cid && ev.state !== 'open' ? html`<div class="notice">This event has no clip.</div>` : null}
    <video ref=${video} controls muted playsinline autoplay preload="auto" class="video"></video>
    <${ErrorBox} error=${error} title="The clip cannot be played" />
    <div class="player-bar">
      <button class="btn small" onClick=${() => seek(-5)} title="Back 5 s">−5 s</button>
      <button class="btn small" onClick=${() => seek(5)} title="Forward 5 s">+5 s</button>
      <span class="muted small">${status.received ? `${status.done ? 'Decrypted' : 'Decrypting'} ${bytes(status.received)}${status.mode === 'mse' ? ' · streamed' : ''}` : ev.clip_cid && ev.state !== 'open' ? 'Fetching the sealed clip…' : ''}</span>
      <button class="btn primary small" disabled=${!blob} onClick=${download}>Download MP4</button>
    </div>
  </div>`;
}

function Evidence({ ev }) {
  const ev2 = useAsync(async () => {
    if (!ev.clip_cid) return { archived: false };
    const [devices, manifest] = await Promise.all([
      get('/api/v1/devices').then((d) => d.devices).catch(() => null),
      get(`/api/v1/archive/${enc(ev.clip_cid)}/manifest`).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
    ]);
    if (!manifest) return { archived: false };
    const result = verifyManifest(manifest, devices ? devices.map((d) => d.peer_id) : null);
    const edge = devices?.find((d) => d.peer_id === manifest.edge_id);
    const m = result.manifest;
    const problems = [];
    if (m) {
      if (m.event_id !== ev.event_id) problems.push('the manifest is for another event');
      if (!m.objects.some((o) => o.kind === 'clip' && o.cid === ev.clip_cid)) problems.push('the manifest does not name this clip');
    }
    return { archived: true, result, edge, problems, devicesKnown: !!devices };
  }, [ev.event_id]);
  const d = ev2.data;
  const ok = d?.result?.ok && !d.problems.length;
  return html`<aside class="evidence card">
    <h2>Evidence</h2>
    <${Dl} rows=${[
      ['Event', html`<code>${ev.event_id}</code>`],
      ['Edge', html`<code class="wrap">${ev.edge_peer_id}</code>`],
      ['Clip CID', ev.clip_cid ? html`<code class="wrap">${ev.clip_cid}</code>` : '—'],
      ['Snapshot CID', ev.snapshot_cid ? html`<code class="wrap">${ev.snapshot_cid}</code>` : '—'],
      ['Thumbnail CID', ev.thumbnail_cid ? html`<code class="wrap">${ev.thumbnail_cid}</code>` : '—'],
    ]} />
    <h3>Archive and signature</h3>
    ${ev2.loading ? html`<${Loading} what="Checking" />` : null}
    <${ErrorBox} error=${ev2.error} />
    ${d && !d.archived ? html`<p><${Badge} kind="warn">not archived yet</${Badge}> The edge has not archived this event (no signed manifest at the vm).</p>` : null}
    ${d && d.archived ? html`<div class="verdict">
      <p class=${ok ? 'verdict-ok' : 'verdict-bad'}><${Badge} kind=${ok ? 'ok' : 'bad'}>${ok ? 'signature verified' : 'NOT verified'}</${Badge}>
        ${ok ? ` Signed by ${d.edge ? d.edge.name : 'the edge'}, checked in this browser (ed25519).` : ' ' + [d.result.reason, ...d.problems].filter(Boolean).join('; ')}</p>
      ${d.result.manifest ? html`<${Dl} rows=${[
        ['Archived', html`<${Badge} kind="ok">archived</${Badge}>`],
        ['Sealed at', dateTime(d.result.manifest.sealed_at_ms)],
        ['Edge enrolled', d.devicesKnown ? (d.edge ? `yes (${d.edge.name})` : 'no') : 'unknown'],
        ['Sealed to', d.result.manifest.key_ids.join(', ')],
        ['Objects', html`<ul class="plain">${d.result.manifest.objects.map((o) => html`<li>${o.kind}: ${bytes(o.size)}</li>`)}</ul>`],
        ['Labels', d.result.manifest.labels.map((l) => `${l.category} ${score(l.score_milli)}`).join(', ')],
      ]} />` : null}
    </div>` : null}
  </aside>`;
}
