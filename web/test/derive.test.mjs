// The owner's keys derived in JavaScript (what the key worker runs) equal the Rust ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityToRecipient } from 'age-encryption';
import { deriveIdentity, deriveSigningPublic, keyId, tenantSalt, signingSalt, hex } from '../src/lib/derive.js';
import { guardian, tempDir, SMALL, DEFAULT } from './helpers.mjs';

// protocols/src/owner_key.rs's known answers (computed there independently, in Python).
const KAT_RECIPIENT = 'age1l5w42atugl23cpra6e7jk6e7t3apdpg38nmejezpuxacek9s0vesxq7rtr';
const KAT_SIGNING_KEY = '666059ffc95ff16307fcdfc4bdfadc23014a4cbbbc6f85f9aefea567d934be13';

test('the known answers of owner_key.rs, default parameters', async () => {
  const id = await deriveIdentity('guardian test secret', 'tenant-kat', DEFAULT);
  assert.match(id, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  assert.equal(await identityToRecipient(id), KAT_RECIPIENT);
  const s = await deriveSigningPublic('guardian test secret', 'tenant-kat', DEFAULT);
  assert.equal(s.public_hex, KAT_SIGNING_KEY);
  assert.match(s.fingerprint, /^SHA256:[0-9a-f]{32}$/);
});

function cli(t, secret, tenant, kdf) {
  const dir = tempDir(t);
  const file = dir.write('secret', secret + '\n');
  const flags = ['--tenant', tenant, '--secret-file', file, '--kdf-memory-kib', String(kdf.memory_kib), '--kdf-iterations', String(kdf.iterations)];
  const identity = guardian('keys', 'identity', ...flags).trim();
  const init = Object.fromEntries(guardian('keys', 'init', ...flags).trim().split('\n').map((l) => {
    const i = l.indexOf(': ');
    return [l.slice(0, i), l.slice(i + 2)];
  }));
  return { identity, ...init };
}

for (const [secret, tenant, kdf] of [
  ['correct horse battery staple', 'tenant-a', SMALL],
  ['pässphrase with ünïcode ✓ and spaces ', 'tenant-7f3c2a', { ...SMALL, iterations: 2 }],
  ['guardian web', 'a-tenant-with-a-rather-long-identifier-0123456789', DEFAULT],
]) {
  test(`the identity, recipient, key id and signing key equal the CLI's (${kdf.memory_kib} KiB, t=${kdf.iterations})`, async (t) => {
    const want = cli(t, secret, tenant, kdf);
    const id = await deriveIdentity(secret, tenant, kdf);
    assert.equal(id, want.identity);
    const recipient = await identityToRecipient(id);
    assert.equal(recipient, want.recipient);
    assert.equal(keyId(recipient), want['key id']);
    const s = await deriveSigningPublic(secret, tenant, kdf);
    assert.equal(s.public_hex, want['owner signing key']);
    assert.equal(s.fingerprint, want['owner signing key fingerprint']);
  });
}

test('the salts are the documented ones and differ', () => {
  assert.equal(hex(tenantSalt('tenant-a')).length, 64);
  assert.notEqual(hex(tenantSalt('tenant-a')), hex(signingSalt('tenant-a')));
  assert.notEqual(hex(tenantSalt('tenant-a')), hex(tenantSalt('tenant-b')));
});

test('another passphrase or tenant gives another key; weak or empty inputs are refused', async () => {
  const a = await deriveIdentity('one', 'tenant-a', SMALL);
  assert.notEqual(a, await deriveIdentity('two', 'tenant-a', SMALL));
  assert.notEqual(a, await deriveIdentity('one', 'tenant-b', SMALL));
  await assert.rejects(deriveIdentity('', 'tenant-a', SMALL), /empty/);
  await assert.rejects(deriveIdentity('x', '', SMALL), /tenant/);
  await assert.rejects(deriveIdentity('x', 't', { ...SMALL, memory_kib: 1024 }), /floor/);
  await assert.rejects(deriveIdentity('x', 't', { ...SMALL, algorithm: 'scrypt' }), /unsupported/);
});
