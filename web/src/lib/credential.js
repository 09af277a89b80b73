// A camera's password sealed in the browser to the edge's own age recipient, bound to the
// camera and the host, exactly as protocols/src/credential.rs (`seal`) and
// `guardian cameras set` do: base64 (standard, padded) of an age file whose plaintext is the
// JSON {"camera", "host" (ASCII lower case), "password"}. The vm never sees the password.
import { Encrypter } from 'age-encryption';
import { base64 } from '@scure/base';

const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** The plaintext the edge expects (serde's field order: camera, host, password). */
export function boundJson(camera, host, password) {
  return JSON.stringify({ camera, host: asciiLower(host), password });
}

export async function sealCredential(edgeRecipient, camera, host, password) {
  if (!/^age1[0-9a-z]+$/.test(edgeRecipient || '')) throw new Error('the edge has no age recipient: it cannot take a password');
  const e = new Encrypter();
  e.addRecipient(edgeRecipient);
  const sealed = await e.encrypt(boundJson(camera, host, password));
  return base64.encode(sealed);
}

function authority(url) {
  const i = url.indexOf('://');
  if (i < 0) return null;
  const start = i + 3;
  const m = url.slice(start).search(/[/?#]/);
  return [start, m < 0 ? url.length : start + m];
}

export function percentDecode(s) {
  const bytes = [];
  const raw = new TextEncoder().encode(s);
  for (let i = 0; i < raw.length; i++) {
    const h = (c) => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);
    if (raw[i] === 37 && i + 2 < raw.length && h(raw[i + 1]) >= 0 && h(raw[i + 2]) >= 0) {
      bytes.push(h(raw[i + 1]) * 16 + h(raw[i + 2]));
      i += 2;
    } else bytes.push(raw[i]);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** A URL's user information split off: {url, username, password}. */
export function splitUserinfo(url) {
  const a = authority(url);
  if (!a) return { url, username: null, password: null };
  const [start, end] = a;
  const at = url.slice(start, end).lastIndexOf('@');
  if (at < 0) return { url, username: null, password: null };
  const info = url.slice(start, start + at);
  const colon = info.indexOf(':');
  const user = colon < 0 ? info : info.slice(0, colon);
  const pass = colon < 0 ? null : info.slice(colon + 1);
  return {
    url: url.slice(0, start) + url.slice(start + at + 1),
    username: percentDecode(user),
    password: pass === null ? null : percentDecode(pass),
  };
}

/** The host of a URL, lower case, without port or user information. */
export function hostOf(url) {
  const a = authority(url);
  if (!a) return null;
  let auth = url.slice(a[0], a[1]);
  const at = auth.lastIndexOf('@');
  if (at >= 0) auth = auth.slice(at + 1);
  let h;
  if (auth.startsWith('[')) {
    const close = auth.indexOf(']');
    if (close < 0) return null;
    h = auth.slice(1, close);
  } else h = auth.split(':')[0];
  return h ? asciiLower(h) : null;
}
