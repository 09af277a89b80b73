// Decryption with typage (`age-encryption`, by age's author). The identity is held in this
// module's memory only: never stored, never sent. Thumbnails and snapshots become blob: URLs;
// clips are decrypted as they stream.
import { Decrypter, Encrypter, identityToRecipient } from 'age-encryption';
import { api } from './api.js';

let decrypter = null;
let recipient = null;
const urls = new Set();

/** Makes a Decrypter for an identity (`AGE-SECRET-KEY-1…`). */
export function decrypterFor(identity) {
  const d = new Decrypter();
  d.addIdentity(identity);
  return d;
}

export async function recipientOf(identity) {
  return identityToRecipient(identity);
}

/** Keeps the identity in memory for this page. */
export async function unlock(identity, itsRecipient) {
  decrypter = decrypterFor(identity);
  recipient = itsRecipient || (await identityToRecipient(identity));
  // What was fetched ahead is decrypted now, all of it at once (what is still on its way, as
  // it comes).
  for (const [key, { path }] of [...early]) sealedImageUrl(key, path).catch(() => {});
}

/** Forgets the identity and every decrypted URL. */
export function lock() {
  decrypter = null;
  recipient = null;
  for (const u of urls) URL.revokeObjectURL(u);
  urls.clear();
  thumbs.clear();
  early.clear();
  done.clear();
}

export const isUnlocked = () => decrypter !== null;
export const myRecipient = () => recipient;

function need(d) {
  const x = d || decrypter;
  if (!x) throw new Error('enter your passphrase first');
  return x;
}

/** Plaintext bytes of a whole age file. */
export async function decryptBytes(bytes, d) {
  return need(d).decrypt(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
}

/** A ReadableStream of plaintext from a ReadableStream of an age file (the header is read first). */
export async function decryptStream(stream, d) {
  return need(d).decrypt(stream);
}

/** Seals bytes or a string to age recipients (`age1…`). */
export async function encrypt(plain, recipients) {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(plain);
}

export function objectUrl(blob) {
  const u = URL.createObjectURL(blob);
  urls.add(u);
  return u;
}

export function revoke(u) {
  if (u && urls.delete(u)) URL.revokeObjectURL(u);
}

// Sealed images are small and the page shows many: a dozen fetches at a time (the fetch is the
// slow part), and each is decrypted as soon as its bytes are here and the key is known, all at
// once (decrypting one is cheap).
const FETCHES = 12;
let running = 0;
const waiting = [];
async function limited(fn) {
  if (running >= FETCHES) await new Promise((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    const next = waiting.shift();
    if (next) next();
  }
}

/** The sealed bytes at `path` (a dozen fetches at a time). */
function fetchSealed(path, signal) {
  return limited(async () => {
    const res = await api(path, { raw: true, signal, headers: { Accept: 'application/octet-stream' } });
    return new Uint8Array(await res.arrayBuffer());
  });
}

/** Fetches a sealed file and decrypts it whole: {bytes, headers}. */
export async function fetchDecrypted(path, signal) {
  const res = await api(path, { raw: true, signal, headers: { Accept: 'application/octet-stream' } });
  const sealed = new Uint8Array(await res.arrayBuffer());
  return { bytes: await decryptBytes(sealed), headers: res.headers };
}

const thumbs = new Map(); // key -> Promise<blob: URL>
// Sealed images fetched ahead (before the key exists, while the worker runs Argon2id): key ->
// {path, bytes: Promise<Uint8Array>}. Only sealed bytes, which need no key; each leaves this
// map when it is decrypted.
const early = new Map();

/** Fetches the sealed image at `path` now, to be decrypted as soon as the key is known. */
export function prefetchSealed(key, path) {
  if (thumbs.has(key) || early.has(key)) return;
  const bytes = fetchSealed(path);
  bytes.catch(() => {
    if (early.get(key)?.bytes === bytes) early.delete(key);
  });
  early.set(key, { path, bytes });
  if (decrypter) sealedImageUrl(key, path).catch(() => {});
}

const done = new Map(); // key -> blob: URL, once decrypted

/** The blob: URL of `key` when it is decrypted already, else null. */
export const sealedImageNow = (key) => done.get(key) || null;

/** A blob: URL of a sealed JPEG at `path`, cached by `key`. */
export function sealedImageUrl(key, path) {
  if (!thumbs.has(key)) {
    const pre = early.get(key);
    early.delete(key);
    const bytes = pre ? pre.bytes.catch(() => fetchSealed(path)) : fetchSealed(path);
    const p = bytes.then(async (sealed) => {
      const u = objectUrl(new Blob([await decryptBytes(sealed)], { type: 'image/jpeg' }));
      if (thumbs.get(key) === p) done.set(key, u);
      return u;
    });
    p.catch(() => thumbs.delete(key));
    thumbs.set(key, p);
  }
  return thumbs.get(key);
}

/** Saves a blob under a file name (an <a download> on a blob: URL). */
export function saveBlob(blob, name) {
  const u = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = u;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(u), 60_000);
}
