// Decryption in JavaScript (typage, as the page does) of files sealed by the Rust CLI and by
// stock `age`, whole and streamed; a wrong identity and a damaged file fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { identityToRecipient } from 'age-encryption';
import { deriveIdentity } from '../src/lib/derive.js';
import { decrypterFor, decryptBytes, decryptStream, encrypt } from '../src/lib/age.js';
import { guardian, tempDir, chunked, readAll, hasCommand, SMALL } from './helpers.mjs';

const SECRET = 'open sesame, in the browser';
const TENANT = 'tenant-web-age';
const identity = await deriveIdentity(SECRET, TENANT, SMALL);
const recipient = await identityToRecipient(identity);
const other = await deriveIdentity('not the passphrase', TENANT, SMALL);

// Sizes around age's 64 KiB chunks: empty, one byte, exactly one chunk, several and a tail.
const SIZES = [0, 1, 65536, 65537, 300_000];

for (const size of SIZES) {
  test(`a ${size}-byte file sealed by \`guardian seal\` opens in JS, whole and streamed`, async (t) => {
    const dir = tempDir(t);
    const plain = randomBytes(size);
    const cid = guardian('seal', '-r', recipient, '-o', dir.path('x.age'), dir.write('x', plain)).trim();
    assert.match(cid, /^b[a-z2-7]+$/);
    const sealed = new Uint8Array(dir.read('x.age'));
    const d = decrypterFor(identity);
    assert.deepEqual(Buffer.from(await decryptBytes(sealed, d)), plain);
    const streamed = await readAll(await decryptStream(chunked(sealed), d));
    assert.deepEqual(Buffer.from(streamed), plain);
  });
}

test('a file sealed by stock `age -r` opens in JS, streamed', { skip: !hasCommand('age') && 'no age CLI' }, async (t) => {
  const dir = tempDir(t);
  const plain = randomBytes(200_000);
  execFileSync('age', ['-r', recipient, '-o', dir.path('y.age'), dir.write('y', plain)]);
  const out = await readAll(await decryptStream(chunked(new Uint8Array(dir.read('y.age'))), decrypterFor(identity)));
  assert.deepEqual(Buffer.from(out), plain);
});

test('a wrong identity cannot open it; a damaged file fails authentication', async (t) => {
  const dir = tempDir(t);
  const plain = randomBytes(150_000);
  guardian('seal', '-r', recipient, '-o', dir.path('z.age'), dir.write('z', plain));
  const sealed = new Uint8Array(dir.read('z.age'));
  await assert.rejects(decryptBytes(sealed, decrypterFor(other)), /no identity matched/);
  await assert.rejects(decryptStream(chunked(sealed), decrypterFor(other)), /no identity matched/);
  const damaged = sealed.slice();
  damaged[damaged.length - 70_000] ^= 1;
  await assert.rejects(decryptBytes(damaged, decrypterFor(identity)));
  await assert.rejects(readAll(await decryptStream(chunked(damaged), decrypterFor(identity))));
  const cut = sealed.slice(0, sealed.length - 10);
  await assert.rejects(decryptBytes(cut, decrypterFor(identity)));
});

test('what JS seals, `guardian open` opens (the other direction)', async (t) => {
  const dir = tempDir(t);
  const plain = randomBytes(70_000);
  const sealed = await encrypt(plain, [recipient]);
  dir.write('secret', SECRET + '\n');
  guardian('open', '--tenant', TENANT, '--secret-file', dir.path('secret'), '--kdf-memory-kib', '8192', '--kdf-iterations', '1',
    '-o', dir.path('plain'), dir.write('w.age', sealed));
  assert.deepEqual(dir.read('plain'), plain);
});
