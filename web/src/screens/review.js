// Review: event cards (decrypted thumbnails) on a timeline grouped by day and hour, newest
// first; filters by camera, label, day and reviewed state; a calendar of the days with events;
// keyboard: j/k or arrows to move, Enter to open, r to mark reviewed.
import { html, useState, useEffect, useRef, useAsync } from '../lib/html.js';
import { get, enc } from '../lib/api.js';
import { review, reviewReady, setReviewed, prefetchReview, thumbPath, thumbKey } from '../lib/events.js';
import { prefetchSealed } from '../lib/age.js';
import { ErrorBox, Loading, Empty, Badge, Page, SealedImg } from '../lib/ui.js';
import { dayKey, hourKey, dayTitle, hourOnly, time, duration, score, dayStart, nextDay, cap } from '../lib/format.js';
import { go, parse } from '../lib/router.js';
import { toast } from '../lib/store.js';

const LABELS = ['person', 'car', 'truck', 'bus', 'motorcycle', 'bicycle'];
const PAGE = 48;

const filtersOf = (query) => ({ camera: query.camera || '', label: query.label || '', reviewed: query.reviewed || '', day: query.day || '' });

/** The first page's query for these filters. */
function firstPage(filters) {
  const q = { camera: filters.camera, label: filters.label, reviewed: filters.reviewed, limit: PAGE };
  if (filters.day) {
    q.after = dayStart(filters.day);
    q.before = dayStart(nextDay(filters.day));
  }
  return q;
}

/**
 * While the key is being made: when the page opens on the review screen, its first page and
 * that page's sealed thumbnails (none of which needs the key), newest first, to be decrypted
 * as soon as the key exists.
 */
export function prefetchFirstPage() {
  const route = parse();
  if (route.name !== 'review') return;
  prefetchReview(firstPage(filtersOf(route.query))).then(
    (r) => r.events.forEach((ev) => ev.thumbnail_cid && prefetchSealed(thumbKey(ev.event_id), thumbPath(ev.event_id))),
    () => {},
  );
}

export function Review({ query }) {
  const filters = filtersOf(query);
  const setFilter = (k, v) => go('review', { ...filters, [k]: v });
  const cameras = useAsync(() => get('/api/v1/cameras').then((r) => r.cameras).catch(() => []), []);
  const days = useAsync(() => get('/api/v1/review/days').catch(() => ({ days: [] })), []);
  // The first page, when it was asked for while the key was being made: shown at once.
  const [ready] = useState(() => reviewReady(firstPage(filters)));
  const [events, setEvents] = useState(ready ? ready.events : []);
  const [next, setNext] = useState(ready ? ready.next_before : null);
  const [error, setError] = useState(null);
  const [loading, setLoading] = useState(!ready);
  const first = useRef(ready);
  const [sel, setSel] = useState(0);
  const listRef = useRef(null);

  const base = () => firstPage(filters);

  useEffect(() => {
    if (first.current) {
      first.current = null;
      return;
    }
    let live = true;
    setLoading(true);
    setError(null);
    review(base()).then(
      (r) => {
        if (!live) return;
        setEvents(r.events);
        setNext(r.next_before);
        setSel(0);
        setLoading(false);
      },
      (e) => live && (setError(e), setLoading(false)),
    );
    return () => {
      live = false;
    };
  }, [filters.camera, filters.label, filters.reviewed, filters.day]);

  async function more() {
    try {
      const r = await review({ ...base(), before: next });
      setEvents((ev) => [...ev, ...r.events.filter((e) => !ev.some((x) => x.event_id === e.event_id))]);
      setNext(r.next_before);
    } catch (e) {
      setError(e);
    }
  }

  async function toggle(ev) {
    try {
      const r = await setReviewed(ev.event_id, !ev.reviewed_at_ms);
      setEvents((list) => list.map((x) => (x.event_id === ev.event_id ? { ...x, reviewed_at_ms: r.reviewed_at_ms } : x)));
    } catch (e) {
      toast(e.message, 'bad');
    }
  }

  useEffect(() => {
    function onKey(e) {
      if (e.target.closest && e.target.closest('input, select, textarea, button')) return;
      if (e.metaKey || e.ctrlKey || e.altKey || !events.length) return;
      let n = sel;
      if (['j', 'ArrowDown', 'ArrowRight'].includes(e.key)) n = Math.min(events.length - 1, sel + 1);
      else if (['k', 'ArrowUp', 'ArrowLeft'].includes(e.key)) n = Math.max(0, sel - 1);
      else if (e.key === 'Enter') return go('event/' + enc(events[sel].event_id));
      else if (e.key === 'r') return toggle(events[sel]);
      else return;
      e.preventDefault();
      setSel(n);
      const card = listRef.current?.querySelector(`[data-index="${n}"]`);
      card?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      card?.focus({ preventScroll: true });
    }
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [events, sel]);

  const camName = (id) => cameras.data?.find((c) => c.id === id)?.name || id;
  const labels = [...new Set([...LABELS, ...events.map((e) => e.category)])];

  // Day, then hour, newest first (the list is already in that order).
  const groups = [];
  events.forEach((ev, i) => {
    const d = dayKey(ev.started_at_ms);
    const h = hourKey(ev.started_at_ms);
    let g = groups[groups.length - 1];
    if (!g || g.day !== d) groups.push((g = { day: d, ms: ev.started_at_ms, hours: [] }));
    let hr = g.hours[g.hours.length - 1];
    if (!hr || hr.hour !== h) g.hours.push((hr = { hour: h, ms: ev.started_at_ms, items: [] }));
    hr.items.push([ev, i]);
  });

  return html`<${Page} title="Review">
    <div class="review-layout">
      <aside class="review-side">
        <div class="filters card">
          <label class="field"><span class="field-label">Camera</span>
            <select name="camera" value=${filters.camera} onChange=${(e) => setFilter('camera', e.target.value)}>
              <option value="">All cameras</option>
              ${(cameras.data || []).map((c) => html`<option value=${c.id}>${c.name}</option>`)}
            </select></label>
          <label class="field"><span class="field-label">Label</span>
            <select name="label" value=${filters.label} onChange=${(e) => setFilter('label', e.target.value)}>
              <option value="">Everything</option>
              ${labels.map((l) => html`<option value=${l}>${cap(l)}</option>`)}
            </select></label>
          <label class="field"><span class="field-label">Reviewed</span>
            <select name="reviewed" value=${filters.reviewed} onChange=${(e) => setFilter('reviewed', e.target.value)}>
              <option value="">All</option><option value="false">Not reviewed</option><option value="true">Reviewed</option>
            </select></label>
          <label class="field"><span class="field-label">Day</span>
            <input type="date" name="day" value=${filters.day} onChange=${(e) => setFilter('day', e.target.value)} /></label>
          ${filters.camera || filters.label || filters.reviewed || filters.day
            ? html`<button class="btn small" onClick=${() => go('review', {})}>Clear filters</button>` : null}
        </div>
        <${Calendar} days=${days.data?.days || []} selected=${filters.day} onPick=${(d) => setFilter('day', d === filters.day ? '' : d)} />
        <p class="muted small keys-help">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> open, <kbd>r</kbd> reviewed</p>
      </aside>
      <div class="review-main" ref=${listRef}>
        <${ErrorBox} error=${error} />
        ${loading ? html`<${Loading} what="Loading events" />` : null}
        ${!loading && !error && !events.length ? html`<${Empty}>No events${filters.day || filters.camera || filters.label || filters.reviewed ? ' match these filters' : ' yet'}.</${Empty}>` : null}
        ${groups.map((g) => html`<div class="day-group">
          <h2 class="day-title">${dayTitle(g.ms)}</h2>
          ${g.hours.map((h) => html`<div class="hour-group">
            <h3 class="hour-title"><span>${hourOnly(h.ms)}</span></h3>
            <div class="cards">
              ${h.items.map(([ev, i]) => html`<${EventCard} ev=${ev} index=${i} selected=${i === sel} cam=${camName(ev.camera_id)}
                onSelect=${() => setSel(i)} onToggle=${() => toggle(ev)} />`)}
            </div>
          </div>`)}
        </div>`)}
        ${next ? html`<div class="more"><button class="btn" onClick=${more}>Load more</button></div>` : null}
      </div>
    </div>
  </${Page}>`;
}

function EventCard({ ev, index, selected, cam, onSelect, onToggle }) {
  const reviewed = !!ev.reviewed_at_ms;
  const v = ev.verification;
  return html`<article class=${'event-card' + (selected ? ' selected' : '') + (reviewed ? ' reviewed' : '')} data-event-id=${ev.event_id}
      data-index=${index} tabindex="0" onFocus=${onSelect}>
    <a class="thumb" href=${'#/event/' + enc(ev.event_id)} tabindex="-1">
      ${ev.thumbnail_cid
        ? html`<${SealedImg} cacheKey=${thumbKey(ev.event_id)} path=${thumbPath(ev.event_id)} alt=${`${ev.category} on ${cam}`} />`
        : html`<div class="img-placeholder"><span class="muted">no picture</span></div>`}
      ${ev.state === 'open' ? html`<span class="live-dot" title="still recording">REC</span>` : null}
    </a>
    <div class="event-meta">
      <div class="event-line"><strong>${cap(ev.category)}</strong> <span class="muted">${score(ev.score_milli)}</span>
        ${v ? html`<${Badge} kind=${v.verdict === 'confirmed' ? 'ok' : v.verdict === 'rejected' ? 'bad' : 'neutral'} title=${'second look: ' + v.model}>${v.verdict}</${Badge}>` : null}</div>
      <div class="event-line muted">${cam} · ${time(ev.started_at_ms)} · ${duration(ev.ended_at_ms - ev.started_at_ms)}</div>
      ${ev.zones?.length ? html`<div class="event-line small">${ev.zones.map((z) => html`<span class="chip">${z}</span>`)}</div>` : null}
    </div>
    <button class=${'btn small review-btn' + (reviewed ? ' done' : '')} onClick=${onToggle} title="Mark reviewed (r)">${reviewed ? '✓ Reviewed' : 'Mark reviewed'}</button>
  </article>`;
}

function Calendar({ days, selected, onPick }) {
  if (!days.length) return null;
  const byDay = new Map(days.map((d) => [d.day, d]));
  const months = [...new Set(days.map((d) => d.day.slice(0, 7)))].slice(0, 3);
  return html`<div class="calendar card">
    ${months.map((m) => {
      const [y, mo] = m.split('-').map(Number);
      const first = new Date(Date.UTC(y, mo - 1, 1));
      const n = new Date(Date.UTC(y, mo, 0)).getUTCDate();
      const lead = (first.getUTCDay() + 6) % 7;
      const cells = [...Array(lead).fill(null), ...Array.from({ length: n }, (_, i) => `${m}-${String(i + 1).padStart(2, '0')}`)];
      return html`<div class="month">
        <div class="month-title">${first.toLocaleDateString(undefined, { month: 'long', year: 'numeric', timeZone: 'UTC' })}</div>
        <div class="month-grid">
          ${['M', 'T', 'W', 'T', 'F', 'S', 'S'].map((d) => html`<span class="dow">${d}</span>`)}
          ${cells.map((d) => {
            if (!d) return html`<span></span>`;
            const info = byDay.get(d);
            const cls = 'cal-day' + (info ? ' has' : '') + (info?.unreviewed ? ' unreviewed' : '') + (d === selected ? ' sel' : '');
            return info
              ? html`<button class=${cls} title=${`${info.events} events, ${info.unreviewed} not reviewed`} onClick=${() => onPick(d)}>${Number(d.slice(8))}</button>`
              : html`<span class=${cls}>${Number(d.slice(8))}</span>`;
          })}
        </div>
      </div>`;
    })}
  </div>`;
}
