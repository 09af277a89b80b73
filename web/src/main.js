// The owner's web app. Boot: the session (sign-in otherwise), the tenant, then the passphrase
// (the key is made in a worker and kept in memory only), then the screens, routed by
// location.hash. To add a screen: a file in screens/ and a line in SCREENS.
import { html, render, useEffect, useState } from './lib/html.js';
import { get, del } from './lib/api.js';
import { store, update, useStore, isAdmin, onEdge } from './lib/store.js';
import { useRoute } from './lib/router.js';
import { forget } from './lib/keys.js';
import { ErrorBox, Loading } from './lib/ui.js';
import { SignIn, Passphrase, loadSession } from './screens/signin.js';
import { Review } from './screens/review.js';
import { Event } from './screens/event.js';
import { Cameras } from './screens/cameras.js';
import { CameraSettings } from './screens/camera-settings.js';
import { System } from './screens/system.js';
import { Archive } from './screens/archive.js';
import { Keys } from './screens/keys.js';
import { Users } from './screens/users.js';
import { Alerts, ModePicker } from './screens/alerts.js';

// name: the hash route; nav: shown in the menu (with its short label); admin: admins only;
// vmOnly: not served by the edge on the LAN.
const SCREENS = [
  { name: 'review', title: 'Review', icon: '◉', nav: true, view: Review },
  { name: 'event', title: 'Event', view: Event },
  { name: 'cameras', title: 'Cameras', icon: '▣', nav: true, view: Cameras },
  { name: 'camera', title: 'Camera settings', admin: true, view: CameraSettings },
  { name: 'camera-new', title: 'Add a camera', admin: true, view: CameraSettings },
  { name: 'system', title: 'System', icon: '◈', nav: true, view: System },
  { name: 'archive', title: 'Archive', icon: '▤', nav: true, vmOnly: true, view: Archive },
  { name: 'alerts', title: 'Alerts', icon: '◬', nav: true, admin: true, vmOnly: true, view: Alerts },
  { name: 'keys', title: 'Keys', icon: '⬡', nav: true, view: Keys },
  { name: 'users', title: 'Users', icon: '◐', nav: true, admin: true, vmOnly: true, view: Users },
];

const allowed = (s) => (!s.admin || isAdmin()) && (!s.vmOnly || !onEdge());

async function signOut() {
  try {
    await del('/api/v1/session');
  } catch {
    /* gone already */
  }
  forget();
  location.hash = '#/review';
  location.reload();
}

function App() {
  const s = useStore();
  const [boot, setBoot] = useState({ loading: true, error: null });

  async function afterSignIn(session) {
    const tenant = await get('/api/v1/tenant');
    update({ session, tenant });
    if (tenant.served_by !== 'edge') get('/api/v1/mode').then((m) => update({ mode: m.mode }), () => {});
  }

  useEffect(() => {
    (async () => {
      try {
        const session = await loadSession();
        if (session) await afterSignIn(session);
        setBoot({ loading: false, error: null });
      } catch (e) {
        setBoot({ loading: false, error: e });
      }
    })();
    const off = () => {
      forget();
      update({ session: null });
    };
    window.addEventListener('guardian:unauthorized', off);
    return () => window.removeEventListener('guardian:unauthorized', off);
  }, []);

  if (boot.loading) return html`<div class="gate"><${Loading} what="Starting" /></div>`;
  if (boot.error) return html`<div class="gate"><div class="card gate-card"><${ErrorBox} error=${boot.error} title="The server cannot be reached" />
    <button class="btn" onClick=${() => location.reload()}>Try again</button></div></div>`;
  if (!s.session) return html`<${SignIn} onSignedIn=${afterSignIn} />`;
  if (!s.unlocked) return html`<${Passphrase} onSignOut=${signOut} />`;
  return html`<${Shell} />`;
}

function Shell() {
  const s = useStore();
  const route = useRoute();
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [route]);
  const screen = SCREENS.find((x) => x.name === route.name) || SCREENS[0];
  const nav = SCREENS.filter((x) => x.nav && allowed(x));
  const current = screen.name === 'event' ? 'review' : screen.name.startsWith('camera') ? 'cameras' : screen.name;
  useEffect(() => {
    document.title = `${screen.title} · Guardian`;
  }, [screen]);
  const View = screen.view;
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href="#/review"><span class="logo" aria-hidden="true"></span><span class="brand-name">Guardian</span></a>
      ${onEdge() ? html`<span class="badge badge-neutral" title="Served by the edge on your home network">local</span>` : null}
      <div class="topbar-right">
        ${s.mode && isAdmin() && !onEdge() ? html`<${ModePicker} mode=${s.mode} compact=${true} />` : s.mode ? html`<span class="badge badge-neutral">mode: ${s.mode}</span>` : null}
        <span class="user muted">${s.session.user.name}${s.session.user.role === 'admin' ? '' : ' (viewer)'}</span>
        <button class="btn small" onClick=${signOut}>Sign out</button>
      </div>
    </header>
    <nav class=${'sidenav' + (menu ? ' open' : '')} aria-label="Screens">
      ${nav.map((x) => html`<a href=${'#/' + x.name} class=${x.name === current ? 'active' : ''} aria-current=${x.name === current ? 'page' : null}>
        <span class="nav-icon" aria-hidden="true">${x.icon}</span><span class="nav-label">${x.title}</span></a>`)}
    </nav>
    <nav class="bottomnav" aria-label="Screens">
      ${nav.slice(0, 3).map((x) => html`<a href=${'#/' + x.name} class=${x.name === current ? 'active' : ''}>
        <span class="nav-icon" aria-hidden="true">${x.icon}</span><span class="nav-label">${x.title}</span></a>`)}
      <button class=${'more-btn' + (menu ? ' active' : '')} onClick=${() => setMenu(!menu)} aria-expanded=${menu}>
        <span class="nav-icon" aria-hidden="true">☰</span><span class="nav-label">More</span></button>
    </nav>
    ${menu ? html`<div class="menu-sheet" onClick=${() => setMenu(false)}>
      <div class="menu-panel">${nav.slice(3).map((x) => html`<a href=${'#/' + x.name}><span class="nav-icon">${x.icon}</span> ${x.title}</a>`)}
        <button class="btn small" onClick=${signOut}>Sign out</button></div></div>` : null}
    <main class="content">
      ${allowed(screen) ? html`<${View} key=${route.name + '/' + (route.arg || '')} ...${route} />`
        : html`<section class="page"><div class="error">This screen is not available ${onEdge() ? 'on the edge' : 'to viewers'}.</div></section>`}
    </main>
    ${s.toast ? html`<div class=${'toast toast-' + s.toast.kind} role="status">${s.toast.message}</div>` : null}
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
