// Keys: the household's key slots and what each edge runs; the owner's recipient and signing
// key fingerprint derived in this browser, beside what the vm reports. Signing a new slot list
// stays in the CLI (`guardian keys slots`): the signing key never enters a web page's hands.
import { html, useAsync, useEffect } from '../lib/html.js';
import { wantSigning } from '../lib/keys.js';
import { get } from '../lib/api.js';
import { ErrorBox, Loading, Badge, Page, Dl } from '../lib/ui.js';
import { dateTime } from '../lib/format.js';
import { useStore, onEdge } from '../lib/store.js';

export function Keys() {
  const s = useStore();
  const t = s.tenant;
  const slots = useAsync(() => get('/api/v1/key-slots'), []);
  useEffect(wantSigning, []);
  const same = (a, b) => (a && b ? (a === b ? html`<${Badge} kind="ok">matches</${Badge}>` : html`<${Badge} kind="bad">differs</${Badge}>`) : null);
  const sig = s.signing;
  return html`<${Page} title="Keys">
    <div class="card">
      <h2>Your key (made in this browser)</h2>
      <${Dl} rows=${[
        ['Your recipient', html`<code class="wrap">${s.recipient}</code> ${s.recipient === t.owner_recipient ? html`<${Badge} kind="ok">the owner's key</${Badge}>` : html`<${Badge}>a member's key slot</${Badge}>`}`],
        ['Owner recipient (vm)', html`<code class="wrap">${t.owner_recipient}</code>`],
        ['Owner key id', html`<code>${t.owner_key_id}</code>`],
        ['Signing key fingerprint (here)', sig?.fingerprint ? html`<code>${sig.fingerprint}</code> ${same(sig.fingerprint, t.owner_signing_fingerprint)}` : sig?.error ? sig.error : 'being derived…'],
        ['Signing key fingerprint (vm)', t.owner_signing_fingerprint ? html`<code>${t.owner_signing_fingerprint}</code>` : 'none yet'],
        ['Key derivation', `Argon2id, ${t.kdf.memory_kib / 1024} MiB, ${t.kdf.iterations} passes, ${t.kdf.parallelism} lane(s)`],
      ]} />
      <p class="muted small">Compare the fingerprint with what <code>guardian-edge status</code> prints on each edge. Adding or removing a key slot
        is signed with the owner signing key, in the command line tool only (<code>guardian keys slots</code>): this page never holds that key.</p>
    </div>
    <div class="card">
      <h2>Key slots</h2>
      <${ErrorBox} error=${slots.error} />
      ${slots.loading ? html`<${Loading} />` : null}
      ${slots.data ? html`
        <p class="muted small">Version ${slots.data.version}${slots.data.signed_at_ms ? `, signed ${dateTime(slots.data.signed_at_ms)}` : ''}.</p>
        ${slots.data.slots.length ? html`<table class="table"><thead><tr><th>Name</th><th>Cameras</th><th>Key id</th><th>Added</th></tr></thead><tbody>
          ${slots.data.slots.map((x) => html`<tr><td>${x.name} ${x.recipient === s.recipient ? html`<${Badge} kind="ok">you</${Badge}>` : null}</td>
            <td>${x.cameras === 'all' ? 'all' : x.cameras.only.join(', ')}</td><td><code>${x.key_id}</code></td><td>${dateTime(x.added_at_ms)}</td></tr>`)}
        </tbody></table>` : html`<p class="muted">No key slots: only the owner's key opens new clips.</p>`}
        ${!onEdge() && slots.data.edges.length ? html`<h3>Edges</h3><table class="table"><thead><tr><th>Edge</th><th>State</th><th>Version</th></tr></thead><tbody>
          ${slots.data.edges.map((e) => html`<tr><td>${e.name}</td><td>${e.state === 'none' ? html`<span class="muted">no key slots yet</span>` : html`<${Badge} kind=${e.state === 'applied' ? 'ok' : e.state === 'refused' ? 'bad' : 'warn'}>${e.state}</${Badge}>`} ${e.reason || ''}</td><td>${e.applied_version ?? '—'}</td></tr>`)}
        </tbody></table>` : null}` : null}
    </div>
  </${Page}>`;
}
