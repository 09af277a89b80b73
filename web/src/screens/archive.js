// Archive: archived objects by camera and day; each can be downloaded and decrypted here.
import { html, useState, useAsync } from '../lib/html.js';
import { get, enc } from '../lib/api.js';
import { fetchDecrypted, saveBlob, objectUrl } from '../lib/age.js';
import { ErrorBox, Loading, Empty, Page } from '../lib/ui.js';
import { bytes, dayKey, dayTitle, time, dateTime, plural } from '../lib/format.js';
import { toast } from '../lib/store.js';

const NAMES = { clip: ['clip.mp4', 'video/mp4'], snapshot: ['snapshot.jpg', 'image/jpeg'], thumbnail: ['thumbnail.jpg', 'image/jpeg'] };

export function Archive({ query }) {
  const camera = query.camera || '';
  const [extra, setExtra] = useState([]);
  const [next, setNext] = useState(null);
  const data = useAsync(async () => {
    const cams = await get('/api/v1/cameras').then((r) => r.cameras).catch(() => []);
    // Newest first: walk the index (oldest first) to its end, keeping the last pages.
    let since = 0, objects = [], page;
    for (let i = 0; i < 20; i++) {
      page = await get('/api/v1/archive', { camera, since, limit: 1000 });
      objects = objects.concat(page.objects.filter((o) => !objects.some((x) => x.cid === o.cid)));
      if (!page.next_since || page.objects.length < 1000) break;
      since = page.next_since;
    }
    setExtra([]);
    setNext(null);
    return { cams, objects };
  }, [camera]);
  const [views, setViews] = useState({});

  async function open(o, save) {
    try {
      const { bytes: plain } = await fetchDecrypted(`/api/v1/archive/${enc(o.cid)}`);
      const [name, type] = NAMES[o.kind];
      const blob = new Blob([plain], { type });
      if (save) saveBlob(blob, `${o.camera_id}-${o.event_id}-${name}`);
      else setViews({ ...views, [o.cid]: objectUrl(blob) });
    } catch (e) {
      toast(e.message, 'bad');
    }
  }

  const objects = [...(data.data?.objects || []), ...extra].sort((a, b) => b.archived_at_ms - a.archived_at_ms);
  const byCam = new Map();
  for (const o of objects) {
    if (!byCam.has(o.camera_id)) byCam.set(o.camera_id, new Map());
    const days = byCam.get(o.camera_id);
    const d = dayKey(o.archived_at_ms);
    if (!days.has(d)) days.set(d, new Map());
    const events = days.get(d);
    if (!events.has(o.event_id)) events.set(o.event_id, []);
    events.get(o.event_id).push(o);
  }
  const camName = (id) => data.data?.cams.find((c) => c.id === id)?.name || id;
  return html`<${Page} title="Archive" actions=${html`<select value=${camera} aria-label="Camera"
      onChange=${(e) => (location.hash = '#/archive' + (e.target.value ? '?camera=' + enc(e.target.value) : ''))}>
      <option value="">All cameras</option>${(data.data?.cams || []).map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>`}>
    <${ErrorBox} error=${data.error} />
    ${data.loading ? html`<${Loading} />` : null}
    ${data.data && !objects.length ? html`<${Empty}>Nothing is archived yet.</${Empty}>` : null}
    ${[...byCam].map(([cam, days]) => html`<section class="card archive-cam">
      <h2>${camName(cam)}</h2>
      ${[...days].map(([day, events]) => html`<details class="archive-day" open=${days.size < 4}>
        <summary>${dayTitle([...events.values()][0][0].archived_at_ms)} <span class="muted">· ${plural(events.size, 'event')}</span></summary>
        <table class="table"><thead><tr><th>Event</th><th>Object</th><th>Size</th><th>Archived</th><th>Kept until</th><th></th></tr></thead><tbody>
          ${[...events].map(([ev, objs]) => objs.map((o, i) => html`<tr data-cid=${o.cid}>
            <td>${i === 0 ? html`<a href=${'#/event/' + enc(ev)}>${ev}</a>` : ''}</td>
            <td>${o.kind}</td><td>${bytes(o.size)}</td><td>${time(o.archived_at_ms)}</td><td>${dateTime(o.retain_until_ms)}</td>
            <td class="row-end">
              ${o.kind !== 'clip' ? html`<button class="btn small" onClick=${() => open(o, false)}>View</button>` : null}
              <button class="btn small" onClick=${() => open(o, true)}>Download</button></td>
          </tr>${views[o.cid] ? html`<tr><td colspan="6"><img class="archive-img" src=${views[o.cid]} alt=${o.kind} /></td></tr>` : null}`))}
        </tbody></table>
      </details>`)}
    </section>`)}
  </${Page}>`;
}
