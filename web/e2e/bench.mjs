// `make bench-web`: the web app in headless chromium against a vm holding EVENTS events with
// sealed thumbnails (made by `vm/tests/web.rs`, test `bench_web`). Each of RUNS runs is a fresh
// page (signed in, locked):
//
//   - passphrase -> the first 24 cards' thumbnails shown (decrypted, blob:, decoded), timed in
//     the page from submitting the form; reference: Argon2id alone (the app's own key worker,
//     same parameters, same browser), the floor of that number;
//   - click on an event -> the video's first frame (readyState >= 2), timed in the page;
//     reference: fetching the same kind of sealed clip without decrypting it;
//   - the bundle's size gzipped (gzip -9 of each file of DIST, summed).
//
// Environment: VM_URL, OWNER_TOKEN, PASSPHRASE; optional RUNS (5), DIST
// (/var/cache/private-ai-guardian/web/dist), CHROMIUM.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadavg, cpus } from 'node:os';
import { need, launch, DESKTOP, signInWithToken, median } from './common.mjs';

const VM_URL = need('VM_URL').replace(/\/$/, '');
const OWNER_TOKEN = need('OWNER_TOKEN');
const PASSPHRASE = need('PASSPHRASE');
const RUNS = Number(process.env.RUNS || 5);
const DIST = process.env.DIST || join(process.env.GUARDIAN_CACHE || '/var/cache/private-ai-guardian', 'web', 'dist');
const FIRST = 24;

const problems = [];
function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !/\/api\/v1\/session$/.test(m.location()?.url || '')) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const browser = await launch();
const load0 = loadavg()[0];
console.log(`chromium ${browser.version()}, ${VM_URL}, ${RUNS} runs, ${cpus().length} CPUs, load average ${load0.toFixed(2)}`);

// Signed in once; every run starts from that cookie, on a fresh page (nothing decrypted yet).
const first = await browser.newContext(DESKTOP);
const p0 = await first.newPage();
watch(p0);
await p0.goto(VM_URL + '/');
await signInWithToken(p0, OWNER_TOKEN);
const storageState = await first.storageState();
const events = await p0.evaluate(async () => (await (await fetch('/api/v1/review?limit=200')).json()).events.length);

// Reference 1: Argon2id alone, in the app's own key worker (a new worker each time, as the
// app makes one per unlock).
const argon = [];
for (let i = 0; i < RUNS; i++) {
  argon.push(
    await p0.evaluate(async (passphrase) => {
      const tenant = await (await fetch('/api/v1/tenant')).json();
      const t0 = performance.now();
      const w = new Worker('/assets/worker.js', { type: 'module', name: 'bench' });
      const identity = await new Promise((resolve, reject) => {
        w.onmessage = (e) => (e.data.stage === 'identity' ? resolve(e.data.identity) : reject(new Error(e.data.message || 'worker: ' + e.data.stage)));
        w.onerror = (e) => reject(new Error(e.message));
        w.postMessage({ id: 1, passphrase, tenant_id: tenant.tenant_id, kdf: tenant.kdf });
      });
      const dt = performance.now() - t0;
      w.terminate();
      if (!identity) throw new Error('no identity');
      return dt;
    }, PASSPHRASE),
  );
}
await first.close();

const thumbs = [];
const cardsShown = [];
const firstThumb = [];
const frames = [];
const fetches = [];
for (let run = 0; run < RUNS; run++) {
  const ctx = await browser.newContext({ ...DESKTOP, storageState });
  const page = await ctx.newPage();
  watch(page);
  await page.goto(VM_URL + '/#/review');
  const input = page.locator('input[name="passphrase"]');
  await input.waitFor({ timeout: 20_000 });
  await input.fill(PASSPHRASE);
  // Passphrase -> the first 24 cards each show a decoded blob: image.
  // (On the way: when the first cards show, and the first thumbnail.)
  const t = await page.evaluate(
    (n) =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        let cardsAt = null;
        let firstAt = null;
        document.querySelector('input[name="passphrase"]').form.requestSubmit();
        const give = setTimeout(() => reject(new Error(`no ${n} thumbnails after 60 s`)), 60_000);
        (function check() {
          const now = performance.now() - t0;
          const cards = [...document.querySelectorAll('[data-event-id]')].slice(0, n);
          const shown = cards.filter((c) => {
            const i = c.querySelector('img');
            return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0;
          });
          if (cards.length && cardsAt === null) cardsAt = now;
          if (shown.length && firstAt === null) firstAt = now;
          if (cards.length === n && shown.length === n) {
            clearTimeout(give);
            resolve({ all: now, cards: cardsAt, first: firstAt });
          } else requestAnimationFrame(check);
        })();
      }),
    FIRST,
  );
  thumbs.push(t.all);
  cardsShown.push(t.cards);
  firstThumb.push(t.first);
  // Click -> the first frame of that event's clip (a different event each run).
  const pick = run % FIRST;
  const eventId = await page.evaluate((k) => document.querySelectorAll('[data-event-id]')[k].dataset.eventId, pick);
  frames.push(
    await page.evaluate(
      (k) =>
        new Promise((resolve, reject) => {
          const link = document.querySelectorAll('[data-event-id]')[k].querySelector('a[href^="#/event/"]');
          const t0 = performance.now();
          link.click();
          const give = setTimeout(() => reject(new Error('no first frame after 30 s')), 30_000);
          (function check() {
            const v = document.querySelector('video');
            if (v && v.readyState >= 2) {
              clearTimeout(give);
              resolve(performance.now() - t0);
            } else requestAnimationFrame(check);
          })();
        }),
      pick,
    ),
  );
  // Reference 2: the sealed clip of another event, fetched whole, not decrypted.
  const other = await page.evaluate(async () => (await (await fetch('/api/v1/review?limit=48')).json()).events.map((e) => e.event_id));
  const otherId = other[(pick + FIRST) % other.length] === eventId ? other[(pick + FIRST + 1) % other.length] : other[(pick + FIRST) % other.length];
  fetches.push(
    await page.evaluate(async (id) => {
      const t0 = performance.now();
      const r = await fetch(`/api/v1/events/${encodeURIComponent(id)}/clip`, { cache: 'no-store' });
      if (!r.ok) throw new Error(`GET clip: ${r.status}`);
      await r.arrayBuffer();
      return performance.now() - t0;
    }, otherId),
  );
  console.log(
    `run ${run + 1}: ${FIRST} thumbnails ${thumbs[run].toFixed(0)} ms (cards ${cardsShown[run].toFixed(0)} ms, first thumbnail ${firstThumb[run].toFixed(0)} ms; Argon2id alone ${argon[run].toFixed(0)} ms); first frame ${frames[run].toFixed(0)} ms (sealed clip fetch ${fetches[run].toFixed(0)} ms)`,
  );
  await ctx.close();
}
await browser.close();

const sizes = files(DIST).map((f) => {
  const raw = readFileSync(f);
  return { file: relative(DIST, f), raw: raw.length, gz: gzipSync(raw, { level: 9 }).length };
});
const gz = sizes.reduce((a, s) => a + s.gz, 0);
const raw = sizes.reduce((a, s) => a + s.raw, 0);

const ms = (x) => `${x.toFixed(0)} ms`;
const row = (cols, widths) => cols.map((c, i) => String(c)[i === 0 ? 'padEnd' : 'padStart'](widths[i])).join('  ');
const W = [34, 9, 10, 30, 7, 6];
const verdict = (ok) => (ok ? 'ok' : 'MISSED');
const [tM, aM, fM, cM] = [median(thumbs), median(argon), median(frames), median(fetches)];
console.log(`\nweb app, headless chromium, ${events} events at the vm, median of ${RUNS} (load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after, ${cpus().length} CPUs)`);
console.log(row(['measure', 'median', 'goal', 'reference (same run)', 'ratio', ''], W));
console.log(row([`passphrase -> first ${FIRST} thumbnails`, ms(tM), '< 1500 ms', `Argon2id alone ${ms(aM)}`, `${(tM / aM).toFixed(2)}x`, verdict(tM < 1500)], W));
console.log(row(['  of which: cards shown', ms(median(cardsShown)), '', '', '', ''], W));
console.log(row(['  of which: first thumbnail', ms(median(firstThumb)), '', '', '', ''], W));
console.log(row(['click -> first frame', ms(fM), '< 1000 ms', `sealed clip fetch ${ms(cM)}`, `${(fM / cM).toFixed(2)}x`, verdict(fM < 1000)], W));
console.log(row(['bundle, gzip -9', `${(gz / 1024).toFixed(1)} KB`, '< 300 KB', `${(raw / 1024).toFixed(1)} KB raw`, '', verdict(gz < 300 * 1024)], W));
console.log('\nbundle files (gzip -9):');
for (const s of sizes.sort((a, b) => b.gz - a.gz)) console.log(`  ${s.file.padEnd(20)} ${(s.raw / 1024).toFixed(1).padStart(8)} KB  ${(s.gz / 1024).toFixed(1).padStart(7)} KB`);
console.log(`runs: thumbnails [${thumbs.map((x) => x.toFixed(0)).join(', ')}] ms; Argon2id [${argon.map((x) => x.toFixed(0)).join(', ')}] ms; first frame [${frames.map((x) => x.toFixed(0)).join(', ')}] ms; clip fetch [${fetches.map((x) => x.toFixed(0)).join(', ')}] ms`);
if (problems.length) {
  console.log(`\nthe page reported problems:\n- ${[...new Set(problems)].join('\n- ')}`);
  process.exit(1);
}
