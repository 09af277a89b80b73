// A stand-in for the vm's API, to look at the web app without a vm: serves the built bundle
// ($GUARDIAN_CACHE/web/dist) with the production headers, and /api/v1 with made-up cameras,
// events (thumbnails and a fragmented MP4 clip made by ffmpeg, sealed to the key of
// passphrase "stub passphrase"), telemetry, users and alerts. Not used by the product.
//
//   node web/dev/stub-server.mjs [PORT]   then open http://127.0.0.1:PORT/, sign in with the
//   token "stub-token" (or admin / stub-password-1, viewer / stub-password-2).
import { createServer } from 'node:http';
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import { join, extname } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { identityToRecipient, Encrypter } from 'age-encryption';
import { ed25519 } from '@noble/curves/ed25519.js';
import { deriveIdentity, keyId, deriveSigningPublic } from '../src/lib/derive.js';
import { ed25519ToPeerId, canonicalJson } from '../src/lib/evidence.js';

const PORT = Number(process.argv[2] || 8099);
const DIST = process.env.GUARDIAN_WEB_DIST || join(process.env.GUARDIAN_CACHE || '/var/cache/private-ai-guardian', 'web', 'dist');
const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; img-src 'self' blob:; media-src 'self' blob:; style-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const KDF = { algorithm: 'argon2id', memory_kib: 65536, iterations: 3, parallelism: 1 };
const TENANT = 'tenant-stub';
const identity = await deriveIdentity('stub passphrase', TENANT, KDF);
const recipient = await identityToRecipient(identity);
const signing = await deriveSigningPublic('stub passphrase', TENANT, KDF);
const seal = async (bytes) => {
  const e = new Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(bytes);
};

// Media from ffmpeg.
const tmp = mkdtempSync(join(tmpdir(), 'guardian-stub-'));
const colors = ['testsrc', 'smptebars', 'rgbtestsrc', 'testsrc2'];
const thumbs = [];
for (const [i, src] of colors.entries()) {
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', `${src}=size=320x180`, '-frames:v', '1', join(tmp, `t${i}.jpg`)]);
  thumbs.push(await seal(readFileSync(join(tmp, `t${i}.jpg`))));
}
execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=15', '-t', '8', '-c:v', 'libx264',
  '-profile:v', 'main', '-pix_fmt', 'yuv420p', '-g', '15', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', join(tmp, 'clip.mp4')]);
const clip = await seal(readFileSync(join(tmp, 'clip.mp4')));

const edgeSeed = new Uint8Array(32).fill(7);
const edgeId = ed25519ToPeerId(ed25519.getPublicKey(edgeSeed));
const now = Date.now();
const cameras = ['front-door', 'driveway', 'garden', 'garage'].map((id, i) => ({
  id, name: id.replace('-', ' ').replace(/^./, (c) => c.toUpperCase()), edge: edgeId, edge_name: 'home-edge', edge_online: true,
  source: { url: `rtsp://192.0.2.${10 + i}:554/main`, onvif: null, username: 'admin', has_password: true }, substream: null, transport: 'tcp', enabled: true,
  detect: { categories: ['person', 'car'], min_score: 0.3, threshold: 0.5, fps: 5, width: 640, height: 360, zones: i === 0 ? [{ name: 'porch', points: [[100, 500], [600, 450], [700, 950], [80, 980]] }] : [], masks: [], verify: true },
  record: { pre_roll_secs: 5, post_roll_secs: 5 }, archive: null, revision: 3, config_state: i === 3 ? 'pending' : 'applied', config_refused_reason: null,
  state: i === 3 ? 'failed' : 'streaming', reason: i === 3 ? 'unauthorized' : null, last_error: i === 3 ? 'RTSP 401 Unauthorized' : null,
  fps: i === 3 ? null : 14.9, width: i === 3 ? null : 1920, height: i === 3 ? null : 1080, bitrate_kbps: i === 3 ? null : 2900,
  last_frame_ms: i === 3 ? now - 3600e3 : now - 400, reported_at_ms: now - 5000, updated_at_ms: now - 86400e3,
}));
const cats = ['person', 'person', 'car', 'person', 'truck', 'bicycle'];
const events = Array.from({ length: 200 }, (_, i) => {
  const started = now - i * 23 * 60e3 - 60e3;
  return {
    event_id: `ev-${String(200 - i).padStart(4, '0')}`, edge_peer_id: edgeId, camera_id: cameras[i % 3].id, started_at_ms: started, ended_at_ms: started + 8000 + (i % 5) * 3000,
    category: cats[i % cats.length], score_milli: 620 + ((i * 37) % 370), clip_cid: `bafkreiclip${i}`, snapshot_cid: null, thumbnail_cid: `bafkreithumb${i}`, truncated: false,
    received_at_ms: started + 9000, state: i === 0 ? 'open' : 'closed', revision: 2, confirmed_at_ms: started + 500, zones: i % 4 === 0 ? ['porch'] : [],
    verification: i % 3 === 0 ? { model: 'centernet', verdict: i % 9 === 0 ? 'rejected' : 'confirmed', score_milli: 800 } : null,
    reviewed_at_ms: i > 10 && i % 2 ? started + 3600e3 : null,
  };
});
function manifestFor(ev) {
  const m = {
    camera_id: ev.camera_id, edge_id: edgeId, ended_at_ms: ev.ended_at_ms, event_id: ev.event_id, format: 'guardian-manifest/2', key_ids: [keyId(recipient)],
    labels: [{ category: ev.category, score_milli: ev.score_milli }], objects: [{ cid: ev.clip_cid, kind: 'clip', size: clip.length }],
    sealed_at_ms: ev.ended_at_ms + 1000, started_at_ms: ev.started_at_ms, tenant_id: TENANT, truncated: false,
  };
  const msg = Buffer.concat([Buffer.from('guardian/manifest/2\0'), Buffer.from(canonicalJson(m))]);
  m.signature = Buffer.from(ed25519.sign(msg, edgeSeed)).toString('hex');
  return m;
}
const users = [
  { name: 'admin', role: 'admin', cameras: null, created_at_ms: now - 30 * 86400e3, last_sign_in_ms: now - 3600e3, password: 'stub-password-1' },
  { name: 'viewer', role: 'viewer', cameras: ['front-door'], created_at_ms: now - 9 * 86400e3, last_sign_in_ms: null, password: 'stub-password-2' },
];
let mode = 'away';
let rules = [{ name: 'people-and-vehicles', cameras: [], categories: ['person', 'vehicle'], min_score: 0, zones: [], days: [], hours: [], modes: ['away'], cooldown_secs: 60, severity: 'warning', require_verification: true }];
const sessions = new Map();
const samples = Array.from({ length: 288 }, (_, i) => ({
  at_ms: now - (288 - i) * 300e3, cpu_milli: 250 + Math.round(150 * Math.sin(i / 20)) + (i % 7) * 10, mem_used_bytes: 1.2e9, mem_total_bytes: 4e9,
  disk_used_bytes: 40e9 + i * 5e7, disk_free_bytes: 60e9 - i * 5e7, archive_backlog_objects: i > 200 && i < 220 ? (i - 200) * 3 : 0, archive_backlog_bytes: 0,
  event_backlog: 0, detector_ms: 18 + (i % 9), cameras: cameras.map((c, j) => ({ camera_id: c.id, state: j === 3 && i > 250 ? 'failed' : 'streaming', fps_milli: j === 3 && i > 250 ? 0 : 14900 })),
}));

const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
};
const err = (res, status, code, message) => json(res, status, { error: code, message });
const body = (req) => new Promise((r) => {
  let s = '';
  req.on('data', (c) => (s += c));
  req.on('end', () => r(s ? JSON.parse(s) : {}));
});
const session = (req) => sessions.get(/guardian_session=([^;]+)/.exec(req.headers.cookie || '')?.[1]);
const visible = (u, camId) => !u.cameras || u.cameras.includes(camId);

async function api(req, res, url) {
  const p = url.pathname;
  const m = req.method;
  if (p === '/api/v1/session') {
    if (m === 'POST') {
      const b = await body(req);
      const u = b.token === 'stub-token' ? { name: 'owner', role: 'admin', cameras: null } : users.find((x) => x.name === b.username && x.password === b.password);
      if (!u) return err(res, 401, 'unauthorized', 'wrong credentials');
      const id = Math.random().toString(36).slice(2);
      const s = { user: { name: u.name, role: u.role, cameras: u.cameras }, expires_at_ms: now + 86400e3 };
      sessions.set(id, s);
      return json(res, 200, s, { 'Set-Cookie': `guardian_session=${id}; HttpOnly; SameSite=Strict; Path=/` });
    }
    const s = session(req);
    if (m === 'DELETE') return json(res, 204, undefined, { 'Set-Cookie': 'guardian_session=; Max-Age=0; Path=/' });
    return s ? json(res, 200, s) : err(res, 401, 'unauthorized', 'sign in');
  }
  const s = session(req);
  if (!s) return err(res, 401, 'unauthorized', 'sign in');
  const u = s.user;
  if (m !== 'GET' && u.role !== 'admin' && !/\/reviewed$/.test(p)) return err(res, 403, 'forbidden', 'admins only');
  let g;
  if (p === '/api/v1/tenant') return json(res, 200, { tenant_id: TENANT, kdf: KDF, owner_recipient: recipient, owner_key_id: keyId(recipient), owner_signing_key: signing.public_hex, owner_signing_fingerprint: signing.fingerprint, served_by: process.env.STUB_EDGE ? 'edge' : 'vm', bundle_sha256: '0'.repeat(64), time_zone: 'Europe/Berlin' });
  if (p === '/api/v1/key-slots') return json(res, 200, { owner_signing_key: signing.public_hex, owner_signing_key_fingerprint: signing.fingerprint, version: 2, signed_at_ms: now - 5 * 86400e3, slots: [{ name: 'alex', recipient: 'age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq', key_id: 'kabcdefghijklmnop', cameras: { only: ['front-door'] }, added_at_ms: now - 5 * 86400e3 }], signed: null, edges: [{ peer_id: edgeId, name: 'home-edge', online: true, state: 'applied', applied_version: 2, offered_version: 2, reason: null, updated_at_ms: now }] });
  if (p === '/api/v1/devices') return json(res, 200, { devices: [{ peer_id: edgeId, name: 'home-edge', recipient, age_recipient: recipient, enrolled_at_ms: now - 40 * 86400e3, agent_version: '0.9.0', last_seen_ms: now - 2000, online: true }] });
  if ((g = /^\/api\/v1\/devices\/([^/]+)\/telemetry$/.exec(p))) {
    const since = Number(url.searchParams.get('since') || 0);
    return json(res, 200, { peer_id: g[1], interval_secs: 300, samples: samples.filter((x) => x.at_ms >= since), offline: [{ from_ms: now - 10 * 3600e3, to_ms: now - 9.5 * 3600e3 }] });
  }
  if (p === '/api/v1/health') return json(res, 200, { status: 'degraded', tenant_id: TENANT, uptime_secs: 86400 * 3 + 1234, edges: [{ peer_id: edgeId, name: 'home-edge', online: true, silent_for_ms: 2000, disk_used_percent: 48, archive_backlog_objects: 0, event_backlog: 0, parked: null, issues: [] }], archive_quarantined: [], archive_stray_uploads: { unaborted: [], parts: { uploads: 0, bytes: 0 } }, archive_over_quota: [], archive_unindexed: [] });
  if (p === '/api/v1/cameras') return json(res, 200, { cameras: cameras.filter((c) => visible(u, c.id)) });
  if (p === '/api/v1/cameras/discovered') return json(res, 200, { edges: [{ edge: edgeId, edge_name: 'home-edge', edge_online: true, enabled: true, scan_started_at_ms: now - 60e3, scan_finished_at_ms: now - 55e3, received_at_ms: now - 55e3, scanned: ['192.0.2.0/24'], errors: [] }], cameras: [{ edge: edgeId, edge_name: 'home-edge', kind: 'onvif', address: '192.0.2.40', rtsp_ports: [554], xaddr: 'http://192.0.2.40/onvif/device_service', endpoint: 'urn:uuid:1', manufacturer: 'Acme', model: 'Dome 4K', name: 'Back yard', firmware: '1.2', needs_credentials: true, credentials_accepted: null, profiles: [{ token: 'main', name: 'Main', role: 'main', url: 'rtsp://192.0.2.40:554/main', codec: 'H264', width: 3840, height: 2160, fps_milli: 15000 }, { token: 'sub', name: 'Sub', role: 'sub', url: 'rtsp://192.0.2.40:554/sub', codec: 'H264', width: 640, height: 360, fps_milli: 15000 }], seen_at_ms: now - 55e3, note: null, configured_as: [] }] });
  if (p === '/api/v1/cameras/discover') return json(res, 202, { edges: [{ edge: edgeId, edge_name: 'home-edge', outcome: 'started' }] });
  if ((g = /^\/api\/v1\/cameras\/([^/]+)\/snapshot$/.exec(p))) {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Guardian-Taken-At-Ms': String(Date.now()) });
    return res.end(thumbs[cameras.findIndex((c) => c.id === g[1]) % thumbs.length]);
  }
  if ((g = /^\/api\/v1\/cameras\/([^/]+)$/.exec(p)) && m === 'PUT') {
    const b = await body(req);
    console.log('PUT camera', JSON.stringify(b));
    return json(res, 200, cameras[0]);
  }
  if (p === '/api/v1/review') {
    const q = url.searchParams;
    let list = events.filter((e) => visible(u, e.camera_id));
    if (q.get('camera')) list = list.filter((e) => e.camera_id === q.get('camera'));
    if (q.get('label')) list = list.filter((e) => e.category === q.get('label'));
    if (q.get('reviewed')) list = list.filter((e) => !!e.reviewed_at_ms === (q.get('reviewed') === 'true'));
    if (q.get('before')) list = list.filter((e) => e.started_at_ms < Number(q.get('before')));
    if (q.get('after')) list = list.filter((e) => e.started_at_ms >= Number(q.get('after')));
    const limit = Number(q.get('limit') || 100);
    const page = list.slice(0, limit);
    return json(res, 200, { events: page, next_before: list.length > limit ? page[page.length - 1].started_at_ms : null });
  }
  if (p === '/api/v1/review/days') {
    const days = new Map();
    for (const e of events.filter((e) => visible(u, e.camera_id))) {
      const d = new Date(e.started_at_ms).toLocaleDateString('en-CA', { timeZone: 'Europe/Berlin' });
      const x = days.get(d) || { day: d, events: 0, unreviewed: 0 };
      x.events++;
      if (!e.reviewed_at_ms) x.unreviewed++;
      days.set(d, x);
    }
    return json(res, 200, { time_zone: 'Europe/Berlin', days: [...days.values()] });
  }
  if ((g = /^\/api\/v1\/events\/([^/]+)\/(thumbnail|clip|reviewed)$/.exec(p))) {
    const i = events.findIndex((e) => e.event_id === g[1]);
    if (i < 0 || !visible(u, events[i].camera_id)) return err(res, 404, 'not_found', 'no such event');
    if (g[2] === 'reviewed') {
      const b = await body(req);
      events[i].reviewed_at_ms = b.reviewed ? Date.now() : null;
      return json(res, 200, { event_id: g[1], reviewed_at_ms: events[i].reviewed_at_ms });
    }
    if (g[2] === 'clip' && events[i].state === 'open') return err(res, 409, 'conflict', 'still recording');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    return res.end(g[2] === 'clip' ? clip : thumbs[i % thumbs.length]);
  }
  if ((g = /^\/api\/v1\/archive\/([^/]+)\/manifest$/.exec(p))) {
    const ev = events.find((e) => e.clip_cid === g[1]);
    if (!ev || events.indexOf(ev) < 3) return err(res, 404, 'not_found', 'not archived');
    return json(res, 200, manifestFor(ev));
  }
  if ((g = /^\/api\/v1\/archive\/([^/]+)$/.exec(p))) {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    return res.end(g[1].startsWith('bafkreiclip') ? clip : thumbs[0]);
  }
  if (p === '/api/v1/archive') {
    const objs = events.slice(3, 40).filter((e) => visible(u, e.camera_id)).flatMap((e) => [
      { cid: e.clip_cid, event_id: e.event_id, kind: 'clip', camera_id: e.camera_id, edge_peer_id: edgeId, bucket: `camera-${e.camera_id}`, key: `events/${e.event_id}/clip.mp4.age`, size: clip.length, key_id: keyId(recipient), archived_at_ms: e.ended_at_ms + 60e3, retain_until_ms: e.ended_at_ms + 30 * 86400e3 },
      { cid: e.thumbnail_cid, event_id: e.event_id, kind: 'thumbnail', camera_id: e.camera_id, edge_peer_id: edgeId, bucket: `camera-${e.camera_id}`, key: `events/${e.event_id}/thumbnail.jpg.age`, size: thumbs[0].length, key_id: keyId(recipient), archived_at_ms: e.ended_at_ms + 60e3, retain_until_ms: e.ended_at_ms + 30 * 86400e3 },
    ]);
    return json(res, 200, { objects: objs.reverse(), next_since: null });
  }
  if (p === '/api/v1/mode') {
    if (m === 'PUT') mode = (await body(req)).mode;
    return json(res, 200, { mode });
  }
  if (p === '/api/v1/alerts/rules') {
    if (m === 'PUT') rules = (await body(req)).rules;
    return json(res, 200, { rules, source: m === 'PUT' ? 'api' : 'config', time_zone: 'Europe/Berlin' });
  }
  if (p === '/api/v1/alerts') return json(res, 200, { channels: ['ntfy:phone', 'webhook:home-assistant'], notifications: events.slice(0, 6).map((e, i) => ({ id: `d${i}`, channel: i % 2 ? 'ntfy:phone' : 'webhook:home-assistant', kind: 'event', status: i === 1 ? 'failing' : 'sent', attempts: i === 1 ? 3 : 1, last_error: i === 1 ? 'HTTP 502' : null, created_at_ms: e.started_at_ms + 2000, next_at_ms: i === 1 ? now + 60e3 : null, sent_at_ms: i === 1 ? null : e.started_at_ms + 2500, title: `${e.category} at ${e.camera_id}`, event_id: e.event_id, rule: 'people-and-vehicles', condition: null })) });
  if (p === '/api/v1/users') return json(res, 200, { users: users.map(({ password, ...x }) => x) });
  if ((g = /^\/api\/v1\/users\/([^/]+)$/.exec(p))) {
    if (m === 'DELETE') {
      users.splice(users.findIndex((x) => x.name === g[1]), 1);
      return json(res, 204);
    }
    const b = await body(req);
    const x = users.find((y) => y.name === g[1]);
    if (x) Object.assign(x, b);
    else users.push({ name: g[1], created_at_ms: Date.now(), last_sign_in_ms: null, ...b });
    return json(res, 200, { name: g[1], role: b.role, cameras: b.cameras });
  }
  return err(res, 404, 'not_found', 'no such endpoint');
}

const TYPES = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml' };
createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const common = { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' };
  for (const [k, v] of Object.entries(common)) res.setHeader(k, v);
  if (process.env.STUB_LOG) console.log(req.method, req.url, req.headers.cookie ? '(cookie)' : '');
  try {
    if (url.pathname.startsWith('/api/')) return await api(req, res, url);
    const file = url.pathname === '/' ? 'index.html' : url.pathname.startsWith('/assets/') ? url.pathname.slice(1) : null;
    if (!file || file.includes('..') || !existsSync(join(DIST, file))) return err(res, 404, 'not_found', 'no such file');
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(join(DIST, file)));
  } catch (e) {
    console.error(e);
    err(res, 500, 'internal', 'stub failure');
  }
}).listen(PORT, '127.0.0.1', () => console.log(`stub on http://127.0.0.1:${PORT}/ (token stub-token, passphrase "stub passphrase")`));
