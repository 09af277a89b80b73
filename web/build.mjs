// Builds the web app with esbuild: src/main.js -> assets/app.js, src/worker.js ->
// assets/worker.js (ESM, minified, no source maps, chrome120), src/app.css -> assets/app.css,
// src/index.html -> index.html, src/icon.svg -> assets/icon.svg. Writes into a temporary
// folder beside the target, then renames it into place. Prints each file's gzipped size.
//
//   node web/build.mjs [OUTDIR]    (default $GUARDIAN_CACHE/web/dist)
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const cache = process.env.GUARDIAN_CACHE || '/var/cache/private-ai-guardian';
const out = resolve(process.argv[2] || join(cache, 'web', 'dist'));
const tmp = `${out}.tmp-${process.pid}`;

rmSync(tmp, { recursive: true, force: true });
mkdirSync(join(tmp, 'assets'), { recursive: true });

await esbuild.build({
  absWorkingDir: here,
  entryPoints: [
    { in: join(src, 'main.js'), out: 'assets/app' },
    { in: join(src, 'worker.js'), out: 'assets/worker' },
    { in: join(src, 'app.css'), out: 'assets/app' },
  ],
  outdir: tmp,
  bundle: true,
  format: 'esm',
  splitting: false,
  minify: true,
  sourcemap: false,
  target: ['chrome120'],
  charset: 'utf8',
  legalComments: 'eof',
  external: ['/assets/*'],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});
copyFileSync(join(src, 'index.html'), join(tmp, 'index.html'));
copyFileSync(join(src, 'icon.svg'), join(tmp, 'assets', 'icon.svg'));

function files(dir) {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}
let total = 0;
for (const f of files(tmp).sort()) {
  const data = readFileSync(f);
  const gz = gzipSync(data, { level: 9 }).length;
  total += gz;
  console.log(`${relative(tmp, f).padEnd(20)} ${String(data.length).padStart(8)} B  ${String(gz).padStart(7)} B gzipped`);
}
console.log(`${'total'.padEnd(20)} ${''.padStart(8)}    ${String(total).padStart(7)} B gzipped`);

// Into place: the old bundle is moved aside, then removed.
const old = `${out}.old-${process.pid}`;
mkdirSync(dirname(out), { recursive: true });
if (existsSync(out)) renameSync(out, old);
renameSync(tmp, out);
rmSync(old, { recursive: true, force: true });
console.log(`built ${out}`);
