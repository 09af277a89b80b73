// The owner's keys from a passphrase and the tenant id, exactly as protocols/src/owner_key.rs:
//
//   salt     = SHA-256("guardian/owner-key/v1" ‖ 0x00 ‖ tenant_id)
//   seed     = Argon2id(passphrase, salt, m, t, p, v = 0x13, 32 bytes)
//   identity = bech32("age-secret-key-", seed) in upper case
//
// and the owner signing key (salt "guardian/owner-signing-key/1"), an ed25519 seed, of which
// only the fingerprint is ever shown. Pure functions: the worker runs them, the tests too.
import { argon2id } from 'hash-wasm';
import { sha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bech32 } from '@scure/base';

const enc = new TextEncoder();
export const MIN_MEMORY_KIB = 8 * 1024;

function domainSalt(domain, tenantId) {
  const d = enc.encode(domain);
  const t = enc.encode(tenantId);
  const buf = new Uint8Array(d.length + 1 + t.length);
  buf.set(d, 0);
  buf[d.length] = 0;
  buf.set(t, d.length + 1);
  return sha256(buf);
}

export const tenantSalt = (tenantId) => domainSalt('guardian/owner-key/v1', tenantId);
export const signingSalt = (tenantId) => domainSalt('guardian/owner-signing-key/1', tenantId);

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Checks the tenant's KDF parameters as the Rust side does. */
export function checkParams(kdf) {
  if (!kdf || kdf.algorithm !== 'argon2id') throw new Error('unsupported key derivation: ' + (kdf && kdf.algorithm));
  for (const k of ['memory_kib', 'iterations', 'parallelism']) {
    if (!Number.isInteger(kdf[k]) || kdf[k] < 1) throw new Error(`bad KDF parameter ${k}`);
  }
  if (kdf.memory_kib < MIN_MEMORY_KIB) throw new Error(`KDF memory ${kdf.memory_kib} KiB is below the floor of ${MIN_MEMORY_KIB} KiB`);
}

/** Argon2id (v 0x13) of the passphrase with a salt, 32 bytes. */
export async function argonSeed(passphrase, salt, kdf) {
  checkParams(kdf);
  if (!passphrase) throw new Error('the passphrase is empty');
  return argon2id({
    password: typeof passphrase === 'string' ? enc.encode(passphrase) : passphrase,
    salt,
    parallelism: kdf.parallelism,
    iterations: kdf.iterations,
    memorySize: kdf.memory_kib,
    hashLength: 32,
    outputType: 'binary',
  });
}

/** The age identity string of a 32-byte seed. */
export function identityFromSeed(seed) {
  if (seed.length !== 32) throw new Error('an age identity needs 32 bytes');
  return bech32.encode('age-secret-key-', bech32.toWords(seed), 1023).toUpperCase();
}

/** The owner's age identity, `AGE-SECRET-KEY-1…`. */
export async function deriveIdentity(passphrase, tenantId, kdf) {
  if (!tenantId) throw new Error('the tenant id is empty');
  const seed = await argonSeed(passphrase, tenantSalt(tenantId), kdf);
  try {
    return identityFromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** The SHA256: fingerprint of a raw public key, as protocols/src/signed.rs prints it. */
export function fingerprint(publicKey) {
  return 'SHA256:' + hex(sha256(publicKey).slice(0, 16));
}

/** The owner signing key's public half (hex) and fingerprint; the secret is wiped. */
export async function deriveSigningPublic(passphrase, tenantId, kdf) {
  if (!tenantId) throw new Error('the tenant id is empty');
  const seed = await argonSeed(passphrase, signingSalt(tenantId), kdf);
  try {
    const pub = ed25519.getPublicKey(seed);
    return { public_hex: hex(pub), fingerprint: fingerprint(pub) };
  } finally {
    seed.fill(0);
  }
}

/** The key id of a recipient: "k" ‖ base32lower(SHA-256("guardian/key-id/v1" ‖ 0 ‖ r)[..10]). */
export function keyId(recipient) {
  const d = enc.encode('guardian/key-id/v1');
  const r = enc.encode(recipient.trim());
  const buf = new Uint8Array(d.length + 1 + r.length);
  buf.set(d, 0);
  buf.set(r, d.length + 1);
  const h = sha256(buf).slice(0, 10);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0, value = 0, out = '';
  for (const b of h) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return 'k' + out;
}
