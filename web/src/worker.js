// The key worker: Argon2id runs here, off the page's thread. It receives the passphrase once
// and answers with the age identity; when the page asks (`signing`), a second run gives the
// owner signing key's public half and fingerprint, and the worker ends. Nothing here makes a
// request, and the page terminates the worker when done, so nothing is kept.
import { deriveIdentity, deriveSigningPublic } from './lib/derive.js';

let job = null;

self.onmessage = async (e) => {
  const m = e.data || {};
  try {
    if (m.passphrase !== undefined) {
      job = { id: m.id, passphrase: m.passphrase, tenant_id: m.tenant_id, kdf: m.kdf };
      const identity = await deriveIdentity(job.passphrase, job.tenant_id, job.kdf);
      self.postMessage({ id: m.id, stage: 'identity', identity });
    } else if (m.signing && job && job.id === m.id) {
      const s = await deriveSigningPublic(job.passphrase, job.tenant_id, job.kdf);
      job = null;
      self.postMessage({ id: m.id, stage: 'signing', ...s });
    }
  } catch (err) {
    job = null;
    self.postMessage({ id: m.id, stage: 'error', message: String((err && err.message) || err) });
  }
};
