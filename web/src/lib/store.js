// The page's state shared between screens: who is signed in, the tenant, whether the key is
// unlocked (the identity itself stays in age.js), the signing key's fingerprint, the mode.
import { useState, useEffect } from 'preact/hooks';

export const store = {
  session: null, // {user: {name, role, cameras}, expires_at_ms}
  tenant: null, // GET /api/v1/tenant
  unlocked: false,
  recipient: null, // the derived age recipient (public)
  signing: null, // {public_hex, fingerprint} of the derived owner signing key, or {error}
  mode: null,
  toast: null,
};
const listeners = new Set();

export function update(patch) {
  Object.assign(store, patch);
  for (const f of [...listeners]) f();
}

export function useStore() {
  const [, force] = useState(0);
  useEffect(() => {
    const f = () => force((x) => x + 1);
    listeners.add(f);
    return () => listeners.delete(f);
  }, []);
  return store;
}

export const isAdmin = () => store.session?.user?.role === 'admin';
export const onEdge = () => store.tenant?.served_by === 'edge';

let toastTimer = null;
export function toast(message, kind = 'info') {
  update({ toast: { message, kind } });
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => update({ toast: null }), 4000);
}
