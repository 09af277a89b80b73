// Sign-in (an owner token, or a user name and password), then the passphrase that unlocks
// the key in this page. The form fields' names are part of the automation contract:
// `token`, `username`, `password`, `passphrase`.
import { html, useState } from '../lib/html.js';
import { api, get } from '../lib/api.js';
import { store, update, useStore } from '../lib/store.js';
import { unlockWith, WrongPassphrase } from '../lib/keys.js';
import { ErrorBox } from '../lib/ui.js';
import { prefetchFirstPage } from './review.js';

export function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  // One form: a user name and password, or the owner token (when it is filled in).
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const token = String(f.get('token') || '').trim();
    const username = String(f.get('username') || '').trim();
    const password = String(f.get('password') || '');
    if (!token && !(username && password)) {
      setError(new Error('Enter your user name and password, or the owner token.'));
      return;
    }
    const body = token ? { token } : { username, password };
    setBusy(true);
    setError(null);
    try {
      const session = await api('/api/v1/session', { method: 'POST', body });
      e.target.reset();
      await onSignedIn(session);
    } catch (err) {
      setError(err.status === 401 ? new Error(token ? 'That token is not right.' : 'Wrong user name or password.') : err);
    } finally {
      setBusy(false);
    }
  }

  return html`<div class="gate">
    <form class="card gate-card" onSubmit=${submit} autocomplete="on">
      <div class="brand-big"><span class="logo" aria-hidden="true"></span>Private AI Guardian</div>
      <h1>Sign in</h1>
      <label class="field"><span class="field-label">User name</span>
        <input name="username" autocomplete="username" autofocus /></label>
      <label class="field"><span class="field-label">Password</span>
        <input name="password" type="password" autocomplete="current-password" /></label>
      <div class="or"><span>or, the first time</span></div>
      <label class="field"><span class="field-label">Owner token</span>
        <input name="token" type="password" autocomplete="off" /></label>
      <${ErrorBox} error=${error} />
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </div>`;
}

export function Passphrase({ onSignOut }) {
  const s = useStore();
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    const input = e.target.elements.passphrase;
    const passphrase = input.value;
    setBusy(true);
    setError(null);
    try {
      // While the worker runs Argon2id: the review list and its sealed thumbnails.
      prefetchFirstPage();
      await unlockWith(passphrase);
    } catch (err) {
      setError(err);
      input.select();
    } finally {
      input.value = '';
      setBusy(false);
    }
  }

  return html`<div class="gate">
    <form class="card gate-card" onSubmit=${submit} autocomplete="off">
      <div class="brand-big"><span class="logo" aria-hidden="true"></span>Private AI Guardian</div>
      <h1>Unlock your videos</h1>
      <p class="muted">Signed in as <strong>${s.session?.user?.name}</strong>. Your passphrase makes your key here, in this page:
        it is never sent anywhere, and video is decrypted only in this browser.</p>
      <label class="field"><span class="field-label">Passphrase</span>
        <input name="passphrase" type="password" autocomplete="off" required autofocus disabled=${busy} /></label>
      ${error
        ? html`<div class=${error instanceof WrongPassphrase ? 'error wrong-passphrase' : 'error'} role="alert">${error.message}</div>`
        : null}
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? 'Making your key…' : 'Unlock'}</button>
      <button class="link" type="button" onClick=${onSignOut}>Sign out</button>
    </form>
  </div>`;
}

export async function loadSession() {
  try {
    return await get('/api/v1/session');
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}
