// The codec string for Media Source Extensions, read from the init segment of MP4s made by
// ffmpeg (fragmented, as the edge records, and plain), against what ffprobe says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { parseInit, boxes } from '../src/lib/mp4.js';
import { tempDir, hasCommand } from './helpers.mjs';

const ffmpeg = hasCommand('ffmpeg') && hasCommand('ffprobe');

function make(dir, name, profile, extra) {
  execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '2',
    '-c:v', 'libx264', '-profile:v', profile, '-pix_fmt', 'yuv420p', ...extra, dir.path(name)]);
  return new Uint8Array(dir.read(name));
}

test('fragmented and plain H.264 MP4s', { skip: !ffmpeg && 'no ffmpeg' }, (t) => {
  const dir = tempDir(t);
  const frag = make(dir, 'f.mp4', 'main', ['-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4']);
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', dir.path('f.mp4')], { encoding: 'utf8' })).streams[0];
  const info = parseInit(frag);
  assert.equal(info.fragmented, true);
  assert.equal(info.codecs.length, 1);
  assert.match(info.codecs[0], /^avc1\.4d[0-9a-f]{2}[0-9a-f]{2}$/);
  assert.equal(parseInt(info.codecs[0].slice(-2), 16), probe.level);
  assert.equal(info.mime, `video/mp4; codecs="${info.codecs[0]}"`);
  assert.ok(info.initEnd < frag.length);
  // Not enough bytes yet: null, not an error.
  assert.equal(parseInit(frag.slice(0, info.initEnd - 1)), null);
  assert.deepEqual(parseInit(frag.slice(0, info.initEnd)), info);
  assert.ok(boxes(frag).some((b) => b.type === 'moof'));

  const plain = make(dir, 'p.mp4', 'high', ['-movflags', '+faststart']);
  const p = parseInit(plain);
  assert.equal(p.fragmented, false);
  assert.match(p.codecs[0], /^avc1\.64/);
  assert.throws(() => parseInit(new TextEncoder().encode('<html>not a video</html>')), /not an MP4/);
});
