// Unlocking: the passphrase goes to the key worker (Argon2id there), the identity comes back
// and is kept in memory by age.js. A wrong passphrase is one whose recipient is neither the
// tenant's owner recipient nor a key slot's: nothing is kept then. The owner signing key's
// fingerprint (a second Argon2id run) is made a little later, or when the Keys screen asks,
// so that it does not slow the first thumbnails.
import { get } from './api.js';
import { unlock, recipientOf, lock } from './age.js';
import { store, update } from './store.js';

let seq = 0;
let pending = null; // {worker, id, timer}: the worker holding the passphrase for the second run

function endPending() {
  if (pending) {
    clearTimeout(pending.timer);
    pending.worker.terminate();
    pending = null;
  }
}

/** Runs the worker's first stage: resolves with {identity, worker, id}. */
function deriveIdentity(passphrase, tenant) {
  return new Promise((resolve, reject) => {
    const worker = new Worker('/assets/worker.js', { type: 'module', name: 'keys' });
    const id = ++seq;
    worker.onmessage = (e) => {
      const m = e.data;
      if (m.id !== id) return;
      if (m.stage === 'identity') {
        resolve({ identity: m.identity, worker, id });
      } else if (m.stage === 'signing') {
        worker.terminate();
        if (pending && pending.id === id) pending = null;
        update({ signing: { public_hex: m.public_hex, fingerprint: m.fingerprint } });
      } else if (m.stage === 'error') {
        worker.terminate();
        if (pending && pending.id === id) {
          pending = null;
          update({ signing: { error: m.message } });
        } else reject(new Error(m.message));
      }
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error('the key worker failed: ' + (e.message || 'unknown error')));
    };
    worker.postMessage({ id, passphrase, tenant_id: tenant.tenant_id, kdf: tenant.kdf });
  });
}

/** Asks for the owner signing key's fingerprint now (the Keys screen). */
export function wantSigning() {
  if (pending && !pending.asked) {
    pending.asked = true;
    clearTimeout(pending.timer);
    pending.worker.postMessage({ id: pending.id, signing: true });
  }
}

export class WrongPassphrase extends Error {}

/** The recipients this page accepts: the owner's and every key slot's. */
async function knownRecipients(tenant) {
  const out = [tenant.owner_recipient].filter(Boolean);
  try {
    const ks = await get('/api/v1/key-slots');
    for (const s of ks.slots || []) out.push(s.recipient);
  } catch {
    /* the edge or a viewer may not list key slots: the owner's recipient alone */
  }
  return out;
}

export async function unlockWith(passphrase) {
  const tenant = store.tenant;
  if (!tenant) throw new Error('the tenant is not known yet');
  endPending();
  const known = knownRecipients(tenant);
  const { identity, worker, id } = await deriveIdentity(passphrase, tenant);
  const recipient = await recipientOf(identity);
  if (!(await known).includes(recipient)) {
    worker.terminate();
    throw new WrongPassphrase('Wrong passphrase: the key it makes opens nothing of this home (it is neither the owner’s key nor a member’s key slot). Nothing was kept.');
  }
  await unlock(identity, recipient);
  pending = { worker, id, asked: false, timer: setTimeout(wantSigning, 5000) };
  update({ unlocked: true, recipient, signing: { pending: true } });
}

export function forget() {
  endPending();
  lock();
  update({ unlocked: false, recipient: null, signing: null });
}
