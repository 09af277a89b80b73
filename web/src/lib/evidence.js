// The evidence checks done in the browser: an event manifest's ed25519 signature by the edge
// that sealed it (protocols/src/manifest.rs), with the key taken out of the manifest's
// `edge_id` (a libp2p peer id `12D3KooW…`).
import { ed25519 } from '@noble/curves/ed25519.js';
import { base58 } from '@scure/base';

export const FORMAT = 'guardian-manifest/2';
const CONTEXT = new TextEncoder().encode('guardian/manifest/2\0');
const TOP = ['camera_id', 'edge_id', 'ended_at_ms', 'event_id', 'format', 'key_ids', 'labels',
  'objects', 'sealed_at_ms', 'signature', 'started_at_ms', 'tenant_id', 'truncated'];
const LABEL = ['category', 'score_milli'];
const OBJECT = ['cid', 'kind', 'size'];
const KINDS = ['clip', 'snapshot', 'thumbnail'];
// identity multihash (0x00, 36 bytes) of the protobuf PublicKey {Type = Ed25519 (1), Data = 32 bytes}
const PEER_PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/** The raw ed25519 public key inside a peer id (`12D3KooW…`), or an Error. */
export function peerIdToEd25519(peerId) {
  let bytes;
  try {
    bytes = base58.decode(String(peerId).trim());
  } catch {
    throw new Error('the peer id is not base58');
  }
  if (bytes.length !== PEER_PREFIX.length + 32 || PEER_PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new Error('the peer id does not embed an ed25519 key');
  }
  return bytes.slice(PEER_PREFIX.length);
}

/** The peer id of a raw ed25519 public key. */
export function ed25519ToPeerId(pub) {
  const bytes = new Uint8Array(PEER_PREFIX.length + 32);
  bytes.set(PEER_PREFIX, 0);
  bytes.set(pub, PEER_PREFIX.length);
  return base58.encode(bytes);
}

/**
 * Canonical JSON (RFC 8785 for this schema, what serde_json writes for the manifest's
 * structs): members sorted by name, no whitespace, integers only.
 */
export function canonicalJson(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error('a manifest holds integers only');
    return String(v);
  }
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']';
  if (typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(byUtf16AsBytes);
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalJson(v[k])).join(',') + '}';
  }
  throw new Error('not JSON');
}

// serde's struct order is byte order of the names; our names are ASCII, where both agree.
function byUtf16AsBytes(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function onlyKeys(obj, allowed, what) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${what} is not an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new Error(`unknown member ${JSON.stringify(k)} in ${what}`);
  }
}

/** Parses a manifest as the Rust side does (unknown members refused, `truncated` false by default). */
export function parseManifest(input) {
  const m = typeof input === 'string' ? JSON.parse(input) : structuredClone(input);
  onlyKeys(m, TOP, 'the manifest');
  if (m.format !== FORMAT) throw new Error(`manifest format ${JSON.stringify(m.format)} is not ${FORMAT}`);
  if (m.truncated === undefined) m.truncated = false;
  for (const k of ['camera_id', 'edge_id', 'event_id', 'tenant_id']) {
    if (typeof m[k] !== 'string') throw new Error(`${k} is missing`);
  }
  for (const k of ['ended_at_ms', 'sealed_at_ms', 'started_at_ms']) {
    if (!Number.isSafeInteger(m[k]) || m[k] < 0) throw new Error(`${k} is not a time`);
  }
  if (!Array.isArray(m.key_ids) || !Array.isArray(m.labels) || !Array.isArray(m.objects)) {
    throw new Error('key_ids, labels and objects must be lists');
  }
  m.labels.forEach((l) => onlyKeys(l, LABEL, 'a label'));
  const seen = new Set();
  for (const o of m.objects) {
    onlyKeys(o, OBJECT, 'an object');
    if (!KINDS.includes(o.kind)) throw new Error(`unknown object kind ${o.kind}`);
    if (seen.has(o.kind)) throw new Error(`the manifest lists the ${o.kind} twice`);
    seen.add(o.kind);
  }
  return m;
}

/** The bytes the edge signed: "guardian/manifest/2" ‖ 0x00 ‖ canonical JSON without signature. */
export function signedMessage(manifest) {
  const { signature, ...rest } = manifest;
  const canonical = new TextEncoder().encode(canonicalJson(rest));
  const msg = new Uint8Array(CONTEXT.length + canonical.length);
  msg.set(CONTEXT, 0);
  msg.set(canonical, CONTEXT.length);
  return msg;
}

function unhex(s) {
  if (typeof s !== 'string' || !/^[0-9a-fA-F]*$/.test(s) || s.length % 2) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Verifies a manifest: its signature under the key in its `edge_id`, and (when a list of
 * enrolled edges' peer ids is given) that the edge is one of them. Returns
 * `{ok, manifest, reason}`; never throws.
 */
export function verifyManifest(input, enrolledPeerIds = null) {
  let m;
  try {
    m = parseManifest(input);
  } catch (e) {
    return { ok: false, manifest: null, reason: 'not a valid manifest: ' + e.message };
  }
  if (!m.signature) return { ok: false, manifest: m, reason: 'the manifest is not signed' };
  const sig = unhex(m.signature);
  if (!sig || sig.length !== 64) return { ok: false, manifest: m, reason: 'the signature is not 128 hex digits' };
  let key;
  try {
    key = peerIdToEd25519(m.edge_id);
  } catch (e) {
    return { ok: false, manifest: m, reason: e.message };
  }
  let good = false;
  try {
    good = ed25519.verify(sig, signedMessage(m), key);
  } catch {
    good = false;
  }
  if (!good) {
    return { ok: false, manifest: m, reason: 'the signature does not verify: a field was changed after signing, or another key signed it' };
  }
  if (enrolledPeerIds && !enrolledPeerIds.includes(m.edge_id)) {
    return { ok: false, manifest: m, reason: `the signing edge ${m.edge_id} is not an enrolled edge` };
  }
  return { ok: true, manifest: m, reason: null };
}
