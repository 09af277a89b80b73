// Users (admin): who may sign in, their role and cameras.
import { html, useState, useAsync } from '../lib/html.js';
import { get, put, del, enc } from '../lib/api.js';
import { ErrorBox, Loading, Badge, Page, Field } from '../lib/ui.js';
import { dateTime, ago } from '../lib/format.js';
import { toast, store } from '../lib/store.js';

export function Users() {
  const data = useAsync(async () => {
    const [users, cams] = await Promise.all([get('/api/v1/users').then((r) => r.users), get('/api/v1/cameras').then((r) => r.cameras).catch(() => [])]);
    return { users, cams };
  }, []);
  const [editing, setEditing] = useState(null);

  async function remove(u) {
    if (!confirm(`Delete user ${u.name}? Their sessions end now.`)) return;
    try {
      await del(`/api/v1/users/${enc(u.name)}`);
      data.reload();
    } catch (e) {
      toast(e.message, 'bad');
    }
  }

  return html`<${Page} title="Users" actions=${html`<button class="btn primary" onClick=${() => setEditing({ isNew: true })}>Add a user</button>`}>
    <${ErrorBox} error=${data.error} />
    ${data.loading ? html`<${Loading} />` : null}
    ${editing ? html`<${UserForm} user=${editing.isNew ? null : editing} cams=${data.data?.cams || []}
        onDone=${() => { setEditing(null); data.reload(); }} onCancel=${() => setEditing(null)} />` : null}
    ${data.data ? html`<div class="card"><table class="table"><thead><tr><th>Name</th><th>Role</th><th>Cameras</th><th>Created</th><th>Last sign-in</th><th></th></tr></thead><tbody>
      ${data.data.users.map((u) => html`<tr data-user=${u.name}><td>${u.name}</td>
        <td><${Badge} kind=${u.role === 'admin' ? 'warn' : 'neutral'}>${u.role}</${Badge}></td>
        <td>${u.cameras == null ? 'all' : u.cameras.length ? u.cameras.join(', ') : 'none'}</td>
        <td>${dateTime(u.created_at_ms)}</td><td>${u.last_sign_in_ms ? ago(u.last_sign_in_ms) : 'never'}</td>
        <td class="row-end"><button class="btn small" onClick=${() => setEditing(u)}>Edit</button>
          ${u.name !== store.session?.user?.name ? html`<button class="btn small danger" onClick=${() => remove(u)}>Delete</button>` : null}</td></tr>`)}
    </tbody></table></div>` : null}
  </${Page}>`;
}

function UserForm({ user, cams, onDone, onCancel }) {
  const [role, setRole] = useState(user?.role || 'viewer');
  const [all, setAll] = useState(user ? user.cameras == null : false);
  const [chosen, setChosen] = useState(new Set(user?.cameras || []));
  const [error, setError] = useState(null);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.target);
    const name = user ? user.name : f.get('name').trim();
    const password = f.get('new_password');
    const body = { role, cameras: all ? null : [...chosen] };
    if (password) body.password = password;
    try {
      if (!user && (!password || password.length < 10)) throw new Error('A new user needs a password of at least 10 characters.');
      if (password && password.length < 10) throw new Error('A password has at least 10 characters.');
      await put(`/api/v1/users/${enc(name)}`, body);
      toast(user ? 'Saved.' : `User ${name} created.`);
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  const flip = (id) => {
    const n = new Set(chosen);
    n.has(id) ? n.delete(id) : n.add(id);
    setChosen(n);
  };
  return html`<form class="card settings-form" onSubmit=${submit}>
    <h2>${user ? `Edit ${user.name}` : 'New user'}</h2>
    <div class="form-grid">
      ${user ? null : html`<${Field} label="Name"><input name="name" required pattern="[A-Za-z0-9._@-]{1,64}" autocomplete="off" /></${Field}>`}
      <${Field} label=${user ? 'New password (optional)' : 'Password'} hint="at least 10 characters"><input name="new_password" type="password" minlength="10" autocomplete="new-password" /></${Field}>
      <${Field} label="Role"><select value=${role} onChange=${(e) => setRole(e.target.value)}>
        <option value="viewer">Viewer: watches and marks reviewed</option><option value="admin">Admin: changes everything</option></select></${Field}>
    </div>
    <fieldset class="cams-pick"><legend>Cameras</legend>
      <label class="check"><input type="checkbox" checked=${all} onChange=${(e) => setAll(e.target.checked)} /> All cameras, present and future</label>
      ${all ? null : cams.map((c) => html`<label class="check"><input type="checkbox" checked=${chosen.has(c.id)} onChange=${() => flip(c.id)} /> ${c.name}</label>`)}
    </fieldset>
    <p class="muted small">A member who should open video also needs a key slot for these cameras (<code>guardian keys slots</code>).</p>
    <${ErrorBox} error=${error} />
    <div class="row-end"><button type="button" class="btn" onClick=${onCancel}>Cancel</button><button class="btn primary" type="submit">Save</button></div>
  </form>`;
}
