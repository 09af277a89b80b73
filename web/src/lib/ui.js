// Shared pieces of the screens.
import { html, useState, useEffect } from './html.js';
import { sealedImageUrl, sealedImageNow } from './age.js';

export function ErrorBox({ error, title }) {
  if (!error) return null;
  const msg = error.message || String(error);
  return html`<div class="error" role="alert">${title ? html`<strong>${title}: </strong>` : null}${msg}</div>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<div class="loading" aria-busy="true"><span class="spinner"></span>${what}…</div>`;
}

export function Empty({ children }) {
  return html`<div class="empty">${children}</div>`;
}

export function Badge({ kind = 'neutral', children, title }) {
  return html`<span class=${'badge badge-' + kind} title=${title}>${children}</span>`;
}

export function Page({ title, actions, children }) {
  return html`<section class="page">
    <header class="page-head"><h1>${title}</h1>${actions ? html`<div class="page-actions">${actions}</div>` : null}</header>
    ${children}
  </section>`;
}

/** An <img> of a sealed JPEG, decrypted here (a blob: URL). */
export function SealedImg({ cacheKey, path, alt = '', className = '' }) {
  const [src, setSrc] = useState(() => sealedImageNow(cacheKey));
  const [err, setErr] = useState(null);
  useEffect(() => {
    let live = true;
    const now = sealedImageNow(cacheKey);
    setSrc(now);
    setErr(null);
    if (now) return;
    sealedImageUrl(cacheKey, path).then((u) => live && setSrc(u), (e) => live && setErr(e));
    return () => {
      live = false;
    };
  }, [cacheKey, path]);
  if (src) return html`<img class=${className} src=${src} alt=${alt} />`;
  return html`<div class=${'img-placeholder ' + className} title=${err ? err.message : 'Decrypting…'}>
    ${err ? html`<span class="muted">${err.status === 404 ? 'no picture' : 'cannot open'}</span>` : html`<span class="spinner"></span>`}
  </div>`;
}

export const stateKind = (s) => ({ streaming: 'ok', connecting: 'warn', stalled: 'warn', disabled: 'neutral', failed: 'bad' })[s] || 'neutral';

export function Field({ label, hint, children }) {
  return html`<label class="field"><span class="field-label">${label}</span>${children}${hint ? html`<span class="hint">${hint}</span>` : null}</label>`;
}

export function Dl({ rows }) {
  return html`<dl class="kv">${rows.filter(Boolean).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}
