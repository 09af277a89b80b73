// A camera password sealed in the browser is what protocols/src/credential.rs `seal` makes:
// base64 (standard) of an age file holding {"camera","host","password"} (serde's order, host
// in ASCII lower case). The Rust side opens it: sealed here to a recipient whose secret the
// CLI derives, `guardian open` gives exactly the JSON the edge's `credential::open` parses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityToRecipient } from 'age-encryption';
import { deriveIdentity } from '../src/lib/derive.js';
import { sealCredential, boundJson, splitUserinfo, hostOf, percentDecode } from '../src/lib/credential.js';
import { guardian, tempDir, SMALL } from './helpers.mjs';

const SECRET = 'the edge stand-in';
const TENANT = 'tenant-cred';

test('a sealed credential opens with the Rust code to the exact JSON credential.rs binds', async (t) => {
  const recipient = await identityToRecipient(await deriveIdentity(SECRET, TENANT, SMALL));
  const dir = tempDir(t);
  dir.write('secret', SECRET + '\n');
  for (const [camera, host, password, json] of [
    ['porch', '192.0.2.10', 'p@ss:word/1', '{"camera":"porch","host":"192.0.2.10","password":"p@ss:word/1"}'],
    ['garage-2', 'Cam.Local', 'qu"ote\\slash ünï\u0001', '{"camera":"garage-2","host":"cam.local","password":"qu\\"ote\\\\slash ünï\\u0001"}'],
  ]) {
    assert.equal(boundJson(camera, host, password), json);
    const b64 = await sealCredential(recipient, camera, host, password);
    assert.match(b64, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.ok(b64.length <= 4096, 'credential.rs refuses more than 4096 characters');
    assert.ok(!b64.includes('p@ss'));
    dir.write('c.age', Buffer.from(b64, 'base64'));
    guardian('open', '--tenant', TENANT, '--secret-file', dir.path('secret'), '--kdf-memory-kib', '8192', '--kdf-iterations', '1',
      '-o', dir.path('c.json'), dir.path('c.age'));
    assert.equal(dir.read('c.json').toString('utf8'), json);
  }
  await assert.rejects(sealCredential(null, 'porch', 'h', 'p'), /cannot take a password/);
});

test('URL helpers agree with credential.rs', () => {
  const u = splitUserinfo('rtsp://admin:p%40ss%3Aw@192.0.2.10:554/main?x=1');
  assert.deepEqual(u, { url: 'rtsp://192.0.2.10:554/main?x=1', username: 'admin', password: 'p@ss:w' });
  assert.deepEqual(splitUserinfo('rtsp://192.0.2.10/main'), { url: 'rtsp://192.0.2.10/main', username: null, password: null });
  assert.equal(splitUserinfo('rtsp://h/a@b').username, null);
  assert.equal(splitUserinfo('test://ball').url, 'test://ball');
  assert.equal(splitUserinfo('rtsp://u@h/').username, 'u');
  assert.equal(percentDecode('%zz%4'), '%zz%4');
  assert.equal(hostOf('rtsp://a:b@Cam.Local:554/x'), 'cam.local');
  assert.equal(hostOf('rtsp://[fd00::5]:8554/x'), 'fd00::5');
  assert.equal(hostOf('rtsp://192.0.2.1'), '192.0.2.1');
  assert.equal(hostOf('test://ball'), 'ball');
  assert.equal(hostOf('file:///tmp/a.mp4'), null);
  assert.equal(hostOf('nonsense'), null);
  assert.equal(hostOf('http://192.0.2.5/onvif/device_service'), '192.0.2.5');
});
