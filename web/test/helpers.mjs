// Shared by the tests: the Rust CLI (`guardian`, release build), temporary files, streams.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cache = process.env.GUARDIAN_CACHE || '/var/cache/private-ai-guardian';
const target = process.env.CARGO_TARGET_DIR || join(cache, 'target');
export const GUARDIAN = process.env.GUARDIAN_BIN || join(target, 'release', 'guardian');

export function guardian(...args) {
  if (!existsSync(GUARDIAN)) {
    throw new Error(`${GUARDIAN} is missing: build it (cargo build --release -p guardian-client) or set GUARDIAN_BIN`);
  }
  return execFileSync(GUARDIAN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function hasCommand(name) {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function tempDir(t) {
  const d = mkdtempSync(join(tmpdir(), 'guardian-web-test-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return {
    path: (name) => join(d, name),
    write: (name, data) => {
      writeFileSync(join(d, name), data);
      return join(d, name);
    },
    read: (name) => readFileSync(join(d, name)),
  };
}

/** A ReadableStream giving `bytes` in chunks of the given sizes (cycled). */
export function chunked(bytes, sizes = [1, 7, 4096, 65535, 65536, 65537, 100000]) {
  let o = 0, i = 0;
  return new ReadableStream({
    pull(ctl) {
      if (o >= bytes.length) return ctl.close();
      const n = sizes[i++ % sizes.length];
      ctl.enqueue(bytes.slice(o, o + n));
      o += n;
    },
  });
}

export async function readAll(stream) {
  const parts = [];
  let n = 0;
  for await (const c of stream) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of parts) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const SMALL = { algorithm: 'argon2id', memory_kib: 8192, iterations: 1, parallelism: 1 };
export const DEFAULT = { algorithm: 'argon2id', memory_kib: 65536, iterations: 3, parallelism: 1 };
