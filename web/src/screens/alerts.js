// Alerts (admin): the arming mode, the rules (GET/PUT /api/v1/alerts/rules), the channels and
// the delivery log.
import { html, useState, useAsync } from '../lib/html.js';
import { get, put } from '../lib/api.js';
import { ErrorBox, Loading, Badge, Page, Field } from '../lib/ui.js';
import { dateTime, ago, score2 } from '../lib/format.js';
import { toast, update, useStore } from '../lib/store.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const MODES = ['home', 'away', 'off'];
const csv = (a) => (a || []).join(', ');
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

export function Alerts() {
  const s = useStore();
  const rules = useAsync(() => get('/api/v1/alerts/rules'), []);
  const log = useAsync(() => get('/api/v1/alerts'), []);
  return html`<${Page} title="Alerts">
    <div class="card">
      <h2>Mode</h2>
      <${ModePicker} mode=${s.mode} />
      <p class="muted small">A rule sends alerts only in the modes it names. Health alerts go whatever the mode.</p>
    </div>
    <${ErrorBox} error=${rules.error} />
    ${rules.loading ? html`<${Loading} />` : null}
    ${rules.data ? html`<${RulesEditor} key=${JSON.stringify(rules.data)} data=${rules.data} onSaved=${rules.setData} />` : null}
    <div class="card">
      <div class="row-between"><h2>Deliveries</h2><button class="btn small" onClick=${log.reload}>Refresh</button></div>
      <${ErrorBox} error=${log.error} />
      ${log.data ? html`<p class="muted small">Channels: ${log.data.channels.length ? log.data.channels.join(', ') : 'none configured'}</p>
        <table class="table"><thead><tr><th>When</th><th>Channel</th><th>What</th><th>Status</th></tr></thead><tbody>
        ${log.data.notifications.map((n) => html`<tr>
          <td>${dateTime(n.created_at_ms)}</td><td>${n.channel}</td>
          <td>${n.title || n.condition || n.kind}${n.event_id ? html` · <a href=${'#/event/' + encodeURIComponent(n.event_id)}>event</a>` : null}${n.rule ? html` <span class="muted">(${n.rule})</span>` : null}</td>
          <td><${Badge} kind=${n.status === 'sent' ? 'ok' : n.status === 'failing' ? 'bad' : 'warn'}>${n.status}</${Badge}>
            ${n.status === 'sent' ? html` <span class="muted small">${ago(n.sent_at_ms)}</span>` : html` <span class="muted small">${n.attempts} attempts${n.last_error ? ': ' + n.last_error : ''}${n.next_at_ms ? ', next ' + dateTime(n.next_at_ms) : ''}</span>`}</td>
        </tr>`)}</tbody></table>
        ${!log.data.notifications.length ? html`<p class="muted">Nothing sent yet.</p>` : null}` : null}
    </div>
  </${Page}>`;
}

export function ModePicker({ mode, compact }) {
  async function set(m) {
    try {
      const r = await put('/api/v1/mode', { mode: m });
      update({ mode: r.mode });
      toast(`Mode: ${r.mode}`);
    } catch (e) {
      toast(e.message, 'bad');
    }
  }
  return html`<div class=${'segmented' + (compact ? ' compact' : '')} role="group" aria-label="Mode">
    ${MODES.map((m) => html`<button type="button" class=${m === mode ? 'on' : ''} aria-pressed=${m === mode} onClick=${() => set(m)}>${m}</button>`)}
  </div>`;
}

function toForm(r) {
  return {
    name: r.name || '', cameras: csv(r.cameras), categories: csv(r.categories ?? ['person', 'vehicle']), min_score: score2(r.min_score ?? 0),
    zones: csv(r.zones), days: new Set(r.days || []), hours: csv(r.hours), modes: new Set(r.modes ?? ['away']),
    cooldown_secs: r.cooldown_secs ?? 60, severity: r.severity || 'warning', require_verification: r.require_verification ?? true,
  };
}
function fromForm(f) {
  return {
    name: f.name, cameras: list(f.cameras), categories: list(f.categories), min_score: Number(f.min_score), zones: list(f.zones),
    days: DAYS.filter((d) => f.days.has(d)), hours: list(f.hours), modes: MODES.filter((m) => f.modes.has(m)),
    cooldown_secs: Number(f.cooldown_secs), severity: f.severity, require_verification: f.require_verification,
  };
}

function RulesEditor({ data, onSaved }) {
  const [rules, setRules] = useState(data.rules.map(toForm));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const change = (i, k, v) => setRules(rules.map((r, j) => (j === i ? { ...r, [k]: v } : r)));
  const flip = (i, k, v) => {
    const n = new Set(rules[i][k]);
    n.has(v) ? n.delete(v) : n.add(v);
    change(i, k, n);
  };
  async function save() {
    setBusy(true);
    setError(null);
    try {
      const r = await put('/api/v1/alerts/rules', { rules: rules.map(fromForm) });
      onSaved(r);
      toast('Rules saved.');
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<div class="card">
    <div class="row-between"><h2>Rules</h2><span class="muted small">from ${data.source === 'api' ? 'this page / the API' : 'vm.toml'} · hours in ${data.time_zone}</span></div>
    ${rules.map((r, i) => html`<fieldset class="rule">
      <legend>${r.name || 'new rule'}</legend>
      <div class="form-grid">
        <${Field} label="Name"><input value=${r.name} pattern="[a-z0-9-]{1,48}" required onInput=${(e) => change(i, 'name', e.target.value)} /></${Field}>
        <${Field} label="Cameras" hint="comma separated; empty: every camera"><input value=${r.cameras} onInput=${(e) => change(i, 'cameras', e.target.value)} /></${Field}>
        <${Field} label="Labels" hint="person, vehicle or a detector label"><input value=${r.categories} onInput=${(e) => change(i, 'categories', e.target.value)} /></${Field}>
        <${Field} label="Minimum score" hint="0 to 1; 0: any score"><input type="number" min="0" max="1" step="0.01" value=${r.min_score} onInput=${(e) => change(i, 'min_score', e.target.value)} /></${Field}>
        <${Field} label="Zones" hint="empty: anywhere"><input value=${r.zones} onInput=${(e) => change(i, 'zones', e.target.value)} /></${Field}>
        <${Field} label="Hours" hint="such as 22-06; empty: all day"><input value=${r.hours} onInput=${(e) => change(i, 'hours', e.target.value)} /></${Field}>
        <${Field} label="Quiet after firing (s)"><input type="number" min="0" value=${r.cooldown_secs} onInput=${(e) => change(i, 'cooldown_secs', e.target.value)} /></${Field}>
        <${Field} label="Severity"><select value=${r.severity} onChange=${(e) => change(i, 'severity', e.target.value)}><option>info</option><option>warning</option><option>critical</option></select></${Field}>
      </div>
      <div class="row wrap"><span class="field-label">Days</span>${DAYS.map((d) => html`<label class="check"><input type="checkbox" checked=${r.days.has(d)} onChange=${() => flip(i, 'days', d)} />${d}</label>`)}<span class="muted small">none: every day</span></div>
      <div class="row wrap"><span class="field-label">Modes</span>${MODES.map((m) => html`<label class="check"><input type="checkbox" checked=${r.modes.has(m)} onChange=${() => flip(i, 'modes', m)} />${m}</label>`)}</div>
      <label class="check"><input type="checkbox" checked=${r.require_verification} onChange=${(e) => change(i, 'require_verification', e.target.checked)} /> Wait for the second look, and send nothing when it rejects the object</label>
      <div class="row-end"><button class="btn small danger" type="button" onClick=${() => setRules(rules.filter((_, j) => j !== i))}>Remove rule</button></div>
    </fieldset>`)}
    <${ErrorBox} error=${error} />
    <div class="row-end">
      <button class="btn" type="button" onClick=${() => setRules([...rules, toForm({ name: `rule-${rules.length + 1}` })])}>Add a rule</button>
      <button class="btn primary" type="button" disabled=${busy} onClick=${save}>${busy ? 'Saving…' : 'Save rules'}</button>
    </div>
  </div>`;
}
