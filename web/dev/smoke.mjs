// Walks the app in headless chromium against the stub (stub-server.mjs): sign-in, passphrase,
// every screen on desktop and phone sizes; screenshots to OUTDIR; fails on a console error, a
// CSP violation, a request to another origin, or one that carries the passphrase or identity.
//
//   node web/dev/stub-server.mjs 8099 &  node web/dev/smoke.mjs http://127.0.0.1:8099 /tmp/shots
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.argv[2] || 'http://127.0.0.1:8099';
const out = process.argv[3] || '/tmp/guardian-shots';
mkdirSync(out, { recursive: true });
const PASS = 'stub passphrase';
const problems = [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });

for (const [label, viewport] of [['desktop', { width: 1366, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
  const ctx = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // Before sign-in, GET /api/v1/session answers 401 by contract; Chromium logs it.
    if (m.type() === 'error' && /\/api\/v1\/session$/.test(m.location().url || '') && /401/.test(m.text())) return;
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`${label} console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith('blob:') && !u.startsWith('data:')) problems.push(`${label} foreign request ${u}`);
    const body = r.postData() || '';
    if ((u + body + JSON.stringify(r.headers())).includes(PASS) || /AGE-SECRET-KEY/i.test(u + body)) problems.push(`${label} request carries a secret: ${u}`);
  });
  await page.goto(base + '/');
  await page.fill('input[name=token]', 'stub-token');
  await page.screenshot({ path: `${out}/${label}-signin.png` });
  await page.click('button[type=submit]');
  await page.waitForSelector('input[name=passphrase]');
  await page.fill('input[name=passphrase]', 'wrong passphrase');
  await page.click('button[type=submit]');
  await page.waitForSelector('.wrong-passphrase', { timeout: 20000 });
  await page.screenshot({ path: `${out}/${label}-wrong-passphrase.png` });
  const t0 = Date.now();
  await page.fill('input[name=passphrase]', PASS);
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('[data-event-id] img[src^="blob:"]').length >= 24, null, { timeout: 30000 });
  console.log(`${label}: 24 thumbnails ${Date.now() - t0} ms after the passphrase`);
  await page.screenshot({ path: `${out}/${label}-review.png` });
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  const id = await page.$eval('[data-event-id]:nth-child(1)', (e) => e.dataset.eventId);
  const t1 = Date.now();
  await page.goto(`${base}/#/event/ev-0190`);
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v && v.readyState >= 2;
  }, null, { timeout: 20000 });
  console.log(`${label}: first frame ${Date.now() - t1} ms`);
  await page.waitForFunction(() => document.querySelector('video').currentTime > 0.5, null, { timeout: 20000 });
  await page.waitForSelector('.verdict-ok', { timeout: 10000 });
  await page.screenshot({ path: `${out}/${label}-event.png` });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Download MP4')]);
  console.log(`${label}: download ${download.suggestedFilename()}`);
  for (const screen of ['cameras', 'camera/front-door', 'camera-new', 'system', 'archive', 'keys', 'users', 'alerts']) {
    await page.goto(`${base}/#/${screen}`);
    await page.waitForTimeout(1200);
    if (screen === 'cameras') {
      await page.click('text=Show a fresh picture >> nth=0');
      await page.waitForSelector('.camera-card img[src^="blob:"]');
    }
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (wide > 0) problems.push(`${label} ${screen}: ${wide} px wider than the window`);
    await page.screenshot({ path: `${out}/${label}-${screen.replace('/', '-')}.png`, fullPage: screen !== 'review' });
  }
  if (label === 'phone') {
    await page.click('.more-btn');
    await page.screenshot({ path: `${out}/${label}-menu.png` });
  }
  await ctx.close();
}
await browser.close();
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('no console error, no CSP violation, no foreign or secret-carrying request');
