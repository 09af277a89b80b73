// Camera settings: add a camera the edges found (or any URL), its password sealed here to the
// edge's own key (bound to the camera and host, as `guardian cameras set` does), detection
// settings, and zones and masks drawn on a fresh decrypted picture. PUT /api/v1/cameras/{id}.
import { html, useState, useEffect, useRef, useAsync } from '../lib/html.js';
import { get, put, post, del, enc } from '../lib/api.js';
import { fetchDecrypted, objectUrl, revoke } from '../lib/age.js';
import { sealCredential, splitUserinfo, hostOf } from '../lib/credential.js';
import { ErrorBox, Loading, Badge, Page, Field } from '../lib/ui.js';
import { ago, score2 } from '../lib/format.js';
import { go } from '../lib/router.js';
import { toast } from '../lib/store.js';

const ID_RE = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

export function CameraSettings({ arg, name }) {
  const isNew = name === 'camera-new';
  const data = useAsync(async () => {
    const [cams, devices, discovered] = await Promise.all([
      get('/api/v1/cameras').then((r) => r.cameras),
      get('/api/v1/devices').then((r) => r.devices),
      get('/api/v1/cameras/discovered').catch(() => ({ edges: [], cameras: [] })),
    ]);
    return { cams, devices, discovered };
  }, [arg, name]);
  if (data.loading) return html`<${Page} title="Camera"><${Loading} /></${Page}>`;
  if (data.error) return html`<${Page} title="Camera"><${ErrorBox} error=${data.error} /></${Page}>`;
  const cam = isNew ? null : data.data.cams.find((c) => c.id === arg);
  if (!isNew && !cam) return html`<${Page} title="Camera"><${ErrorBox} error=${new Error('No such camera.')} /></${Page}>`;
  return html`<${Editor} key=${arg || 'new'} cam=${cam} ...${data.data} rescan=${data.reload} />`;
}

function fromCamera(c) {
  return {
    id: c.id,
    name: c.name,
    edge: c.edge,
    kind: c.source.onvif ? 'onvif' : 'url',
    url: c.source.url || '',
    xaddr: c.source.onvif?.xaddr || '',
    profile: c.source.onvif?.profile || '',
    substream_profile: c.source.onvif?.substream_profile || '',
    username: c.source.username || '',
    password: '',
    has_password: c.source.has_password,
    substream: c.substream || '',
    transport: c.transport,
    enabled: c.enabled,
    categories: c.detect.categories.join(', '),
    min_score: score2(c.detect.min_score),
    threshold: score2(c.detect.threshold),
    fps: c.detect.fps,
    width: c.detect.width,
    height: c.detect.height,
    verify: c.detect.verify,
    zones: c.detect.zones,
    masks: c.detect.masks,
    pre_roll_secs: c.record.pre_roll_secs,
    post_roll_secs: c.record.post_roll_secs,
    archive: c.archive,
  };
}

function blank(devices) {
  return {
    id: '', name: '', edge: devices.length === 1 ? devices[0].peer_id : '', kind: 'url', url: '', xaddr: '', profile: '', substream_profile: '',
    username: '', password: '', has_password: false, substream: '', transport: 'tcp', enabled: true,
    categories: 'person, car, truck, bus, motorcycle, bicycle', min_score: 0.3, threshold: 0.5, fps: 5, width: 640, height: 360, verify: true,
    zones: [], masks: [], pre_roll_secs: 5, post_roll_secs: 5, archive: null,
  };
}

function Editor({ cam, cams, devices, discovered, rescan }) {
  const [f, setF] = useState(() => (cam ? fromCamera(cam) : blank(devices)));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });

  function useFound(d) {
    const main = d.profiles.find((p) => p.role === 'main') || d.profiles[0];
    const sub = d.profiles.find((p) => p.role === 'sub');
    const base = (d.name || d.model || d.address).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'camera';
    let id = base;
    for (let i = 2; cams.some((c) => c.id === id); i++) id = `${base}-${i}`;
    setF({
      ...f,
      id: f.id || id,
      name: f.name || d.name || d.model || d.address,
      edge: d.edge,
      kind: d.kind === 'onvif' && d.xaddr ? 'onvif' : 'url',
      xaddr: d.xaddr || '',
      profile: d.kind === 'onvif' ? main?.token || '' : '',
      substream_profile: d.kind === 'onvif' ? sub?.token || '' : '',
      url: d.kind === 'v4l2' ? `v4l2://${d.address}` : main?.url || (d.rtsp_ports.length ? `rtsp://${d.address}:${d.rtsp_ports[0]}/` : ''),
      substream: d.kind !== 'onvif' ? sub?.url || '' : '',
    });
  }

  async function save(e) {
    e.preventDefault();
    setError(null);
    try {
      if (!ID_RE.test(f.id)) throw new Error('The id is 1 to 48 characters of a-z, 0-9 and -, not starting or ending with -.');
      const device = devices.find((d) => d.peer_id === f.edge) || (devices.length === 1 ? devices[0] : null);
      if (!device) throw new Error('Choose the edge that runs this camera.');
      setBusy(true);
      let source;
      const num = (v) => (v === '' || v == null ? undefined : Number(v));
      if (f.kind === 'onvif') {
        const parts = splitUserinfo(f.xaddr.trim());
        if (parts.username) throw new Error('Give the ONVIF user in the user name field, not in the URL.');
        source = { onvif: { xaddr: parts.url } };
        if (f.username) source.onvif.username = f.username;
        if (f.profile) source.onvif.profile = f.profile;
        if (f.substream_profile) source.onvif.substream_profile = f.substream_profile;
        if (f.password) source.onvif.password_sealed = await sealCredential(device.age_recipient, f.id, hostOf(parts.url) || '', f.password);
      } else {
        const parts = splitUserinfo(f.url.trim());
        const username = f.username || parts.username;
        const password = f.password || parts.password;
        if (password && !username) throw new Error('A password needs a user name.');
        source = { url: parts.url };
        if (username) source.username = username;
        if (password) source.password_sealed = await sealCredential(device.age_recipient, f.id, hostOf(parts.url) || '', password);
      }
      const body = {
        name: f.name || f.id,
        edge: device.peer_id,
        source,
        substream: f.kind === 'url' && f.substream ? splitUserinfo(f.substream.trim()).url : null,
        transport: f.transport,
        enabled: f.enabled,
        detect: {
          categories: f.categories.split(',').map((s) => s.trim()).filter(Boolean),
          min_score: num(f.min_score), threshold: num(f.threshold), fps: num(f.fps), width: num(f.width), height: num(f.height),
          zones: f.zones, masks: f.masks, verify: f.verify,
        },
        record: { pre_roll_secs: num(f.pre_roll_secs), post_roll_secs: num(f.post_roll_secs) },
      };
      if (f.archive) body.archive = f.archive;
      await put(`/api/v1/cameras/${enc(f.id)}`, body);
      setF({ ...f, password: '' });
      toast('Saved: the edge applies it in a moment.');
      go('cameras');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    if (!confirm(`Stop and forget camera ${f.id}? Its recorded events stay.`)) return;
    try {
      await del(`/api/v1/cameras/${enc(f.id)}`);
      go('cameras');
    } catch (err) {
      setError(err);
    }
  }

  async function discover() {
    try {
      await post('/api/v1/cameras/discover', {});
      toast('The edges are scanning their networks…');
      setTimeout(rescan, 5000);
    } catch (err) {
      setError(err);
    }
  }

  const found = discovered.cameras.filter((d) => !d.configured_as.length);
  const dev = devices.find((d) => d.peer_id === f.edge);
  return html`<${Page} title=${cam ? `Camera: ${cam.name}` : 'Add a camera'} actions=${html`<a class="btn" href="#/cameras">← Cameras</a>`}>
    ${!cam ? html`<div class="card">
      <div class="row-between"><h2>Found on your network</h2><button class="btn small" onClick=${discover}>Scan again</button></div>
      ${found.length ? html`<ul class="found-list">${found.map((d) => html`<li>
          <div><strong>${d.name || d.model || d.address}</strong> <span class="muted">${d.kind} · ${d.address}${d.manufacturer ? ' · ' + d.manufacturer : ''} · on ${d.edge_name}</span>
            ${d.needs_credentials ? html` <${Badge} kind="warn">needs a password</${Badge}>` : null}
            <div class="muted small">${d.profiles.map((p) => `${p.role}: ${p.width || '?'}×${p.height || '?'} ${p.codec || ''}`).join(' · ')} · seen ${ago(d.seen_at_ms)}</div></div>
          <button class="btn small" onClick=${() => useFound(d)}>Use</button>
        </li>`)}</ul>` : html`<p class="muted">No new cameras found. ${discovered.edges.some((e) => !e.enabled) ? 'Discovery is off on some edges.' : ''}</p>`}
    </div>` : null}
    <form class="card settings-form" onSubmit=${save}>
      <div class="form-grid">
        <${Field} label="Id" hint="a-z, 0-9 and -; fixed once saved"><input name="id" value=${f.id} onInput=${set('id')} disabled=${!!cam} required /></${Field}>
        <${Field} label="Name"><input name="name" value=${f.name} onInput=${set('name')} /></${Field}>
        <${Field} label="Edge"><select name="edge" value=${f.edge} onChange=${set('edge')} required>
          <option value="">Choose…</option>${devices.map((d) => html`<option value=${d.peer_id}>${d.name}${d.online ? '' : ' (offline)'}</option>`)}</select></${Field}>
        <${Field} label="Source"><select name="kind" value=${f.kind} onChange=${set('kind')}><option value="url">Stream URL</option><option value="onvif">ONVIF camera</option></select></${Field}>
        ${f.kind === 'url'
          ? html`<${Field} label="Stream URL" hint="rtsp://, rtsps://, v4l2://, file:// or test://"><input name="url" value=${f.url} onInput=${set('url')} required /></${Field}>
              <${Field} label="Substream URL" hint="optional, lower resolution, for detection"><input name="substream" value=${f.substream} onInput=${set('substream')} /></${Field}>`
          : html`<${Field} label="ONVIF device service"><input name="xaddr" value=${f.xaddr} onInput=${set('xaddr')} required /></${Field}>
              <${Field} label="Profile"><input name="profile" value=${f.profile} onInput=${set('profile')} /></${Field}>
              <${Field} label="Substream profile"><input name="substream_profile" value=${f.substream_profile} onInput=${set('substream_profile')} /></${Field}>`}
        <${Field} label="User name"><input name="username" value=${f.username} onInput=${set('username')} autocomplete="off" /></${Field}>
        <${Field} label="Camera password" hint=${f.has_password ? 'set; type a new one to replace it' : 'sealed here to the edge’s own key: the vm never sees it'}>
          <input name="camera_password" type="password" value=${f.password} onInput=${set('password')} autocomplete="new-password" /></${Field}>
        <${Field} label="Transport"><select value=${f.transport} onChange=${set('transport')}><option>tcp</option><option>udp</option></select></${Field}>
        <label class="check"><input type="checkbox" checked=${f.enabled} onChange=${set('enabled')} /> Enabled</label>
      </div>
      ${dev && !dev.age_recipient ? html`<div class="error">This edge was enrolled before edges made their own keys: it cannot take a password.</div>` : null}
      <h3>Detection</h3>
      <div class="form-grid">
        <${Field} label="Labels" hint="comma separated"><input value=${f.categories} onInput=${set('categories')} /></${Field}>
        <${Field} label="Minimum score"><input type="number" step="0.01" min="0" max="1" value=${f.min_score} onInput=${set('min_score')} /></${Field}>
        <${Field} label="Threshold"><input type="number" step="0.01" min="0" max="1" value=${f.threshold} onInput=${set('threshold')} /></${Field}>
        <${Field} label="Detection fps"><input type="number" min="1" max="30" value=${f.fps} onInput=${set('fps')} /></${Field}>
        <${Field} label="Width"><input type="number" min="64" max="1920" step="4" value=${f.width} onInput=${set('width')} /></${Field}>
        <${Field} label="Height"><input type="number" min="64" max="1080" value=${f.height} onInput=${set('height')} /></${Field}>
        <${Field} label="Pre-roll (s)"><input type="number" min="0" max="60" value=${f.pre_roll_secs} onInput=${set('pre_roll_secs')} /></${Field}>
        <${Field} label="Post-roll (s)"><input type="number" min="0" max="600" value=${f.post_roll_secs} onInput=${set('post_roll_secs')} /></${Field}>
        <label class="check"><input type="checkbox" checked=${f.verify} onChange=${set('verify')} /> Second look by the stronger model</label>
      </div>
      <h3>Zones and masks</h3>
      ${cam ? html`<${ZoneEditor} camId=${cam.id} zones=${f.zones} masks=${f.masks} onChange=${(zones, masks) => setF({ ...f, zones, masks })} />`
        : html`<p class="muted">Save the camera first; then draw zones on its picture.</p>`}
      <${ErrorBox} error=${error} />
      <div class="row-end">
        ${cam ? html`<button class="btn danger" type="button" onClick=${remove}>Remove camera</button>` : null}
        <button class="btn primary" type="submit" disabled=${busy}>${busy ? 'Saving…' : 'Save'}</button>
      </div>
    </form>
  </${Page}>`;
}

/** Zones and masks: polygons in thousandths of the frame, drawn by clicking on the picture. */
function ZoneEditor({ camId, zones, masks, onChange }) {
  const [pic, setPic] = useState(null);
  const [error, setError] = useState(null);
  const [draft, setDraft] = useState([]);
  const [kind, setKind] = useState('zone');
  const [zname, setZname] = useState('');
  const svg = useRef(null);
  async function load() {
    setError(null);
    try {
      const { bytes } = await fetchDecrypted(`/api/v1/cameras/${enc(camId)}/snapshot`);
      if (pic) revoke(pic);
      setPic(objectUrl(new Blob([bytes], { type: 'image/jpeg' })));
    } catch (e) {
      setError(e);
    }
  }
  useEffect(() => {
    load();
  }, [camId]);
  function click(e) {
    const r = svg.current.getBoundingClientRect();
    const x = Math.round(((e.clientX - r.left) / r.width) * 1000);
    const y = Math.round(((e.clientY - r.top) / r.height) * 1000);
    if (draft.length < 64) setDraft([...draft, [Math.max(0, Math.min(1000, x)), Math.max(0, Math.min(1000, y))]]);
  }
  function finish() {
    if (draft.length < 3) return setError(new Error('A zone needs at least 3 points.'));
    if (kind === 'zone') {
      const name = zname.trim() || `zone-${zones.length + 1}`;
      onChange([...zones, { name, points: draft }], masks);
    } else onChange(zones, [...masks, { points: draft }]);
    setDraft([]);
    setZname('');
    setError(null);
  }
  const pts = (p) => p.map(([x, y]) => `${x},${y}`).join(' ');
  return html`<div class="zone-editor">
    <div class="zone-canvas">
      ${pic ? html`<img src=${pic} alt="The camera now" />` : html`<div class="img-placeholder">${error ? 'No picture' : html`<span class="spinner"></span>`}</div>`}
      <svg ref=${svg} viewBox="0 0 1000 1000" preserveAspectRatio="none" onClick=${click} class="zone-svg">
        ${zones.map((z) => html`<polygon class="zone" points=${pts(z.points)}><title>${z.name}</title></polygon>`)}
        ${masks.map((m) => html`<polygon class="mask" points=${pts(m.points)} />`)}
        ${draft.length ? html`<polyline class=${'draft ' + kind} points=${pts(draft)} />` : null}
        ${draft.map(([x, y]) => html`<circle class="draft-point" cx=${x} cy=${y} r="8" />`)}
      </svg>
    </div>
    <div class="zone-side">
      <p class="muted small">Click on the picture to place the corners, then add it. Zones name where events happen; masks hide areas from detection.</p>
      <div class="row">
        <select value=${kind} onChange=${(e) => setKind(e.target.value)}><option value="zone">Zone</option><option value="mask">Mask</option></select>
        ${kind === 'zone' ? html`<input placeholder="name, such as driveway" value=${zname} maxlength="64" onInput=${(e) => setZname(e.target.value)} />` : null}
      </div>
      <div class="row">
        <button type="button" class="btn small primary" onClick=${finish} disabled=${draft.length < 3}>Add ${kind} (${draft.length} points)</button>
        <button type="button" class="btn small" onClick=${() => setDraft(draft.slice(0, -1))} disabled=${!draft.length}>Undo point</button>
        <button type="button" class="btn small" onClick=${load}>New picture</button>
      </div>
      <${ErrorBox} error=${error} />
      <ul class="plain zone-list">
        ${zones.map((z, i) => html`<li><span class="chip zone-chip">${z.name || 'zone'}</span> ${z.points.length} points
          <button type="button" class="link" onClick=${() => onChange(zones.filter((_, j) => j !== i), masks)}>remove</button></li>`)}
        ${masks.map((m, i) => html`<li><span class="chip mask-chip">mask</span> ${m.points.length} points
          <button type="button" class="link" onClick=${() => onChange(zones, masks.filter((_, j) => j !== i))}>remove</button></li>`)}
      </ul>
    </div>
  </div>`;
}
