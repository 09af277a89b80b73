// The manifest check done in the browser accepts manifests signed by the Rust code
// (web/test/vectors/, written and checked by protocols/src/manifest.rs's
// web_vectors_are_what_this_code_signs) and refuses any change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { verifyManifest, canonicalJson, peerIdToEd25519, ed25519ToPeerId, parseManifest } from '../src/lib/evidence.js';

const vector = (name) => readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8');
const TEXT = vector('manifest.json');
const ESCAPES = vector('manifest-escapes.json');
// The Rust tests' edge key: the ed25519 key with seed [7; 32].
const EDGE_PUB = ed25519.getPublicKey(new Uint8Array(32).fill(7));

test('the Rust-signed manifests verify, and their canonical bytes are the Rust ones', () => {
  for (const text of [TEXT, ESCAPES]) {
    const r = verifyManifest(text);
    assert.equal(r.ok, true, r.reason);
    // The stored form is the canonical bytes with the signature member in its place.
    const raw = text.trimEnd();
    const withoutSig = raw.replace(/,"signature":"[0-9a-f]{128}"/, '');
    const { signature, ...rest } = JSON.parse(raw);
    assert.equal(canonicalJson(rest), withoutSig);
  }
  assert.equal(JSON.parse(ESCAPES).truncated, true);
});

test("the edge id is the signing key's peer id; enrolled edges are checked", () => {
  const m = JSON.parse(TEXT);
  assert.match(m.edge_id, /^12D3KooW/);
  assert.deepEqual(peerIdToEd25519(m.edge_id), EDGE_PUB);
  assert.equal(ed25519ToPeerId(EDGE_PUB), m.edge_id);
  assert.equal(verifyManifest(TEXT, [m.edge_id, '12D3KooWother']).ok, true);
  const r = verifyManifest(TEXT, ['12D3KooWother']);
  assert.equal(r.ok, false);
  assert.match(r.reason, /not an enrolled edge/);
  assert.throws(() => peerIdToEd25519('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'), /ed25519/);
  assert.throws(() => peerIdToEd25519('not base58 0OIl'), /base58/);
});

test('every changed field, another key, a missing or malformed signature are refused', () => {
  const m = JSON.parse(TEXT);
  const changes = {
    camera_id: 'back-door', ended_at_ms: 1, event_id: 'ev-02', key_ids: ['kzzzz'], truncated: true,
    labels: [{ category: 'car', score_milli: 874 }], sealed_at_ms: 2, started_at_ms: 3, tenant_id: 'tenant-b', objects: [],
  };
  for (const [k, v] of Object.entries(changes)) {
    const r = verifyManifest({ ...m, [k]: v });
    assert.equal(r.ok, false, k);
    assert.match(r.reason, /does not verify/, k);
  }
  const score = structuredClone(m);
  score.labels[0].score_milli += 1;
  assert.equal(verifyManifest(score).ok, false);
  const size = structuredClone(m);
  size.objects[0].size = 99;
  assert.equal(verifyManifest(size).ok, false);
  // Signed by another key but naming the same edge.
  const other = new Uint8Array(32).fill(8);
  const forged = { ...m, edge_id: ed25519ToPeerId(ed25519.getPublicKey(other)) };
  assert.equal(verifyManifest(forged).ok, false);
  // An added member is refused outright, like deny_unknown_fields.
  assert.match(verifyManifest({ ...m, note: 'hi' }).reason, /unknown member/);
  const { signature, ...unsigned } = m;
  assert.match(verifyManifest(unsigned).reason, /not signed/);
  assert.match(verifyManifest({ ...m, signature: 'zz' }).reason, /128 hex/);
  assert.match(verifyManifest({ ...m, format: 'guardian-manifest/1' }).reason, /format/);
  assert.match(verifyManifest('{').reason, /not a valid manifest/);
  assert.throws(() => parseManifest({ ...m, objects: [m.objects[0], m.objects[0]] }), /twice/);
});

test('a manifest stored without `truncated` is checked as Rust reads it (false)', () => {
  const m = JSON.parse(TEXT);
  assert.equal(m.truncated, false);
  const { truncated, ...older } = m;
  assert.equal(verifyManifest(older).ok, true);
});
