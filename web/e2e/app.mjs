// The owner's web app in a real browser (Debian's chromium through playwright-core), against a
// real vm, an enrolled edge and the camera stand-in, started by `vm/tests/web.rs`:
//
//   - the owner signs in with the token, a wrong passphrase is refused (no thumbnail is
//     decrypted), the right one shows the person event's card with its decrypted thumbnail;
//   - the event's clip plays (readyState >= 2, currentTime advances) and the download is the
//     MP4 `age -d` gives (EXPECTED_CLIP_SHA256);
//   - every screen on a desktop (1280x800) and a phone (390x844, touch), screenshots in
//     ARTIFACTS; a phone screen wider than the phone fails;
//   - a viewer without the event's camera sees none of its cards, and the API answers 404 for
//     its thumbnail with the viewer's cookie;
//   - no request (the worker's included) goes anywhere but the vm, and none carries the
//     passphrase or an age identity (`AGE-SECRET-KEY`) in its URL, headers or body; nothing
//     is left in the browser's storage either;
//   - a console error, an uncaught exception or a CSP violation fails.
//
// Environment: VM_URL, OWNER_TOKEN, PASSPHRASE, EVENT_ID, EXPECTED_CLIP_SHA256, VIEWER_USER,
// VIEWER_PASSWORD, ARTIFACTS; optional CAMERA_ID (the event's camera, for its settings
// screen), VIEWER_EVENT_ID (an event the viewer may see), CHROMIUM.
// Exit status 0 when everything holds; 1 with every failure listed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { need, launch, DESKTOP, PHONE, signInWithToken, signInWithPassword, submitPassphrase, navigate, settle } from './common.mjs';

const VM_URL = need('VM_URL').replace(/\/$/, '');
const OWNER_TOKEN = need('OWNER_TOKEN');
const PASSPHRASE = need('PASSPHRASE');
const EVENT_ID = need('EVENT_ID');
const EXPECTED = need('EXPECTED_CLIP_SHA256').toLowerCase();
const VIEWER_USER = need('VIEWER_USER');
const VIEWER_PASSWORD = need('VIEWER_PASSWORD');
const ARTIFACTS = need('ARTIFACTS');
const CAMERA_ID = process.env.CAMERA_ID || null;
const VIEWER_EVENT_ID = process.env.VIEWER_EVENT_ID || null;
const ORIGIN = new URL(VM_URL).origin;
mkdirSync(ARTIFACTS, { recursive: true });

const failures = [];
const requests = [];
const started = Date.now();
const say = (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${m}`);
const fail = (m) => {
  failures.push(m);
  console.log(`FAIL: ${m}`);
};

const card = (id) => `[data-event-id="${id}"]`;
const decryptedImgs = (page, scope = '[data-event-id]') =>
  page.evaluate(
    (s) => [...document.querySelectorAll(`${s} img`)].filter((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0).length,
    scope,
  );

/** A context whose every request, console message, page error and CSP violation is watched. */
async function watchedContext(browser, label, options) {
  const ctx = await browser.newContext({ ...options, acceptDownloads: true });
  // Before the app's own scripts: CSP violations in the page go to the console as errors.
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`),
    );
  });
  // signedIn: the 401 of GET /api/v1/session is expected before; expect404: a step that asks
  // for what the API must refuse (Chromium logs every 4xx answer to the console).
  const state = { signedIn: false, expect404: false };
  ctx.on('request', (r) => {
    // Headers (cookies included) come asynchronously; kept with the request and checked at the end.
    requests.push(
      r.allHeaders().then(
        (headers) => ({ label, url: r.url(), method: r.method(), headers, body: r.postDataBuffer() }),
        () => ({ label, url: r.url(), method: r.method(), headers: r.headers(), body: r.postDataBuffer() }),
      ),
    );
  });
  ctx.on('page', (page) => watchPage(page, label, state));
  return { ctx, state };
}

function watchPage(page, label, state) {
  page.on('console', (m) => {
    const text = m.text();
    const where = m.location()?.url || '';
    // Before sign-in, GET /api/v1/session answers 401 by contract and Chromium logs it.
    if (m.type() === 'error' && !state.signedIn && /\/api\/v1\/session$/.test(where) && /\b401\b/.test(text)) return;
    if (m.type() === 'error' && state.expect404 && /Failed to load resource/.test(text) && /\b404\b/.test(text)) return;
    if (m.type() === 'error' || /Content[- ]Security[- ]Policy|Refused to/i.test(text)) fail(`${label}: console ${m.type()}: ${text} (${where})`);
  });
  page.on('pageerror', (e) => fail(`${label}: uncaught in the page: ${e.message}`));
  page.on('crash', () => fail(`${label}: the page crashed`));
  page.on('worker', (w) => {
    if (typeof w.on === 'function') {
      try {
        w.on('console', (m) => {
          if (m.type() === 'error') fail(`${label}: worker console error: ${m.text()}`);
        });
      } catch {
        /* this playwright has no worker console events */
      }
    }
  });
}

async function shot(page, label, name, fullPage = true) {
  const path = join(ARTIFACTS, `${label}-${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** A phone screen must not scroll sideways. */
async function fitsWidth(page, label, name) {
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (over > 1) fail(`${label} ${name}: the page is ${over} px wider than the window`);
}

/** Every visible error box (role=alert) on the screen. */
async function alertsShown(page) {
  return page.evaluate(() => [...document.querySelectorAll('[role="alert"]')].filter((e) => e.offsetParent !== null).map((e) => e.textContent.trim()));
}

async function noAlerts(page, label, name) {
  for (const a of await alertsShown(page)) fail(`${label} ${name}: the screen shows an error: ${a}`);
}

async function step(label, what, f) {
  const t = Date.now();
  try {
    const r = await f();
    say(`${label}: ${what} (${Date.now() - t} ms)`);
    return r;
  } catch (e) {
    fail(`${label}: ${what}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

/** The owner's whole visit at one screen size. */
async function ownerVisit(browser, label, options) {
  const { ctx, state } = await watchedContext(browser, label, options);
  const page = await ctx.newPage();
  try {
    const res = await step(label, 'the app loads with its security headers', async () => {
      const r = await page.goto(VM_URL + '/', { waitUntil: 'load' });
      assert.equal(r.status(), 200, 'GET / status');
      const h = r.headers();
      assert.match(h['content-security-policy'] || '', /default-src 'none'/, 'Content-Security-Policy');
      assert.match(h['content-security-policy'] || '', /frame-ancestors 'none'/, 'CSP frame-ancestors');
      assert.equal(h['x-content-type-options'], 'nosniff');
      assert.equal((h['x-frame-options'] || '').toUpperCase(), 'DENY');
      await page.locator('input[name="token"]').waitFor({ timeout: 20_000 });
      return r;
    });
    void res;
    await shot(page, label, 'signin', false);
    if (label === 'phone') await fitsWidth(page, label, 'signin');

    await step(label, 'sign in with the owner token', async () => {
      await signInWithToken(page, OWNER_TOKEN);
      state.signedIn = true;
    });
    await shot(page, label, 'passphrase', false);

    await step(label, 'a wrong passphrase is refused and decrypts nothing', async () => {
      await submitPassphrase(page, PASSPHRASE + ' but wrong');
      const err = page.locator('.wrong-passphrase, [role="alert"]').first();
      await err.waitFor({ timeout: 30_000 });
      const text = (await err.textContent()) || '';
      assert.match(text, /wrong|not right|incorrect/i, `the error says the passphrase is wrong: ${text}`);
      assert.equal(await page.locator('[data-event-id]').count(), 0, 'no event card behind a wrong passphrase');
      assert.equal(await page.locator('img[src^="blob:"]').count(), 0, 'no decrypted image behind a wrong passphrase');
      await page.locator('input[name="passphrase"]:enabled').waitFor({ timeout: 10_000 });
    });
    await shot(page, label, 'wrong-passphrase', false);

    await step(label, 'the passphrase unlocks: the person event with its decrypted thumbnail', async () => {
      await submitPassphrase(page, PASSPHRASE);
      await page.locator(card(EVENT_ID)).waitFor({ timeout: 30_000 });
      await page.waitForFunction(
        (sel) => {
          const i = document.querySelector(`${sel} img`);
          return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0;
        },
        card(EVENT_ID),
        { timeout: 30_000 },
      );
      const text = await page.locator(card(EVENT_ID)).textContent();
      assert.match(text, /person/i, 'the card says person');
    });
    await settle(page, `${label} review`);
    await noAlerts(page, label, 'review');
    await shot(page, label, 'review', false);
    if (label === 'phone') await fitsWidth(page, label, 'review');

    await step(label, 'open the event: the clip plays', async () => {
      await page.locator(`${card(EVENT_ID)} a[href^="#/event/"]`).first().click();
      await page.waitForFunction((id) => location.hash === '#/event/' + encodeURIComponent(id), EVENT_ID, { timeout: 5_000 });
      await page.waitForFunction(() => document.querySelector('video')?.readyState >= 2, null, { timeout: 30_000 });
      const t0 = await page.evaluate(async () => {
        const v = document.querySelector('video');
        v.muted = true;
        await v.play();
        return v.currentTime;
      });
      await page.waitForFunction((t) => document.querySelector('video').currentTime > t + 0.3, t0, { timeout: 15_000 });
      const v = await page.evaluate(() => {
        const x = document.querySelector('video');
        return { w: x.videoWidth, h: x.videoHeight, src: x.currentSrc, duration: x.duration };
      });
      assert.ok(v.w > 0 && v.h > 0, `the video has a picture (${v.w}x${v.h})`);
      assert.ok(v.src.startsWith('blob:'), `the video plays decrypted data from a blob: URL (${v.src})`);
      say(`${label}: video ${v.w}x${v.h}, ${Number.isFinite(v.duration) ? v.duration.toFixed(1) + ' s' : 'streamed'}`);
    });

    await step(label, 'the download is the clip `age -d` gives', async () => {
      const button = page.locator('button', { hasText: 'Download MP4' });
      await page.waitForFunction(() => [...document.querySelectorAll('button')].some((b) => /Download MP4/.test(b.textContent) && !b.disabled), null, { timeout: 30_000 });
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), button.click()]);
      const path = join(ARTIFACTS, `${label}-download.mp4`);
      await download.saveAs(path);
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      assert.equal(sha, EXPECTED, `the downloaded MP4 (${download.suggestedFilename()}) has the plaintext's SHA-256`);
    });
    await page.evaluate(() => document.querySelector('video')?.pause());
    await settle(page, `${label} event`);
    await noAlerts(page, label, 'event');
    await shot(page, label, 'event');
    if (label === 'phone') await fitsWidth(page, label, 'event');

    // Every other screen, by the app's links.
    for (const name of ['cameras', 'system', 'archive', 'keys', 'users', 'alerts']) {
      await step(label, `screen ${name}`, async () => {
        await navigate(page, name);
        await settle(page, `${label} ${name}`);
      });
      if (name === 'cameras') {
        await step(label, "a camera's fresh picture, sealed by the edge, decrypted here", async () => {
          const cam = page.locator(CAMERA_ID ? `[data-camera-id="${CAMERA_ID}"]` : '.camera-card').first();
          await cam.locator('button', { hasText: 'fresh picture' }).click();
          await page.waitForFunction(
            (sel) => {
              const i = document.querySelector(`${sel} img`);
              return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0;
            },
            CAMERA_ID ? `[data-camera-id="${CAMERA_ID}"]` : '.camera-card',
            { timeout: 30_000 },
          );
        });
      }
      await noAlerts(page, label, name);
      if (name === 'keys') {
        // The owner signing key's fingerprint, derived here, beside the vm's.
        await page.waitForFunction(() => !/being derived/.test(document.querySelector('main').textContent), null, { timeout: 30_000 }).catch(() =>
          fail(`${label} keys: the signing key fingerprint is still being derived after 30 s`),
        );
      }
      await shot(page, label, name);
      if (label === 'phone') await fitsWidth(page, label, name);
      if (name === 'cameras') {
        await step(label, 'screen camera settings (from the camera card)', async () => {
          const sel = CAMERA_ID ? `[data-camera-id="${CAMERA_ID}"] a[href^="#/camera/"]` : '.camera-card a[href^="#/camera/"]';
          await page.locator(sel).first().click();
          await page.waitForFunction(() => location.hash.startsWith('#/camera/'), null, { timeout: 5_000 });
          await settle(page, `${label} camera settings`);
        });
        await noAlerts(page, label, 'camera-settings');
        await shot(page, label, 'camera-settings');
        if (label === 'phone') await fitsWidth(page, label, 'camera-settings');
      }
    }
    if (label === 'phone') {
      await page.locator('.more-btn').click();
      await page.locator('.menu-panel').waitFor({ timeout: 5_000 });
      await shot(page, label, 'menu', false);
    }

    // Nothing secret is kept in the browser's storage.
    const storage = JSON.stringify(await ctx.storageState());
    const kept = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    if ((storage + kept).includes(PASSPHRASE)) fail(`${label}: the passphrase is kept in the browser's storage`);
    if (/AGE-SECRET-KEY/i.test(storage + kept)) fail(`${label}: an age identity is kept in the browser's storage`);
  } catch (e) {
    await shot(page, label, 'failure').catch(() => {});
    if (!failures.length) fail(`${label}: ${e.message}`);
    throw e;
  } finally {
    await ctx.close();
  }
}

/** A viewer allowed another camera only: none of the event's cards, and 404 from the API. */
async function viewerVisit(browser) {
  const label = 'viewer';
  const { ctx, state } = await watchedContext(browser, label, DESKTOP);
  const page = await ctx.newPage();
  try {
    await page.goto(VM_URL + '/');
    await step(label, 'sign in with the user name and password', async () => {
      await signInWithPassword(page, VIEWER_USER, VIEWER_PASSWORD);
      state.signedIn = true;
    });
    await step(label, 'unlock and see the review', async () => {
      await submitPassphrase(page, PASSPHRASE);
      await page.locator('main .page-head h1').first().waitFor({ timeout: 30_000 });
      await settle(page, 'viewer review');
      if (VIEWER_EVENT_ID) await page.locator(card(VIEWER_EVENT_ID)).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator(card(EVENT_ID)).count(), 0, `the viewer sees no card of ${EVENT_ID}`);
    });
    await noAlerts(page, label, 'review');
    await shot(page, label, 'review', false);
    await step(label, 'the API refuses the event to the viewer (cookie)', async () => {
      const me = await page.request.get(`${VM_URL}/api/v1/session`);
      assert.equal(me.status(), 200, 'the viewer cookie goes along');
      const who = await me.json();
      assert.equal(who.user.name, VIEWER_USER);
      assert.equal(who.user.role, 'viewer');
      const thumb = await page.request.get(`${VM_URL}/api/v1/events/${encodeURIComponent(EVENT_ID)}/thumbnail`);
      assert.equal(thumb.status(), 404, 'the thumbnail of an event of another camera');
      const clip = await page.request.get(`${VM_URL}/api/v1/events/${encodeURIComponent(EVENT_ID)}/clip`);
      assert.equal(clip.status(), 404, 'the clip of an event of another camera');
      const review = await (await page.request.get(`${VM_URL}/api/v1/review?limit=500`)).json();
      assert.ok(!review.events.some((e) => e.event_id === EVENT_ID), 'the review list leaves the event out');
      if (VIEWER_EVENT_ID) assert.ok(review.events.some((e) => e.event_id === VIEWER_EVENT_ID), 'the review list has the viewer camera event');
    });
    await step(label, "the event's own route shows nothing of it", async () => {
      state.expect404 = true;
      await page.evaluate((id) => (location.hash = '#/event/' + encodeURIComponent(id)), EVENT_ID);
      await settle(page, 'viewer event');
      assert.equal(await page.locator('video').count(), 0, 'no player for an event the viewer may not see');
      await page.waitForLoadState('networkidle');
      state.expect404 = false;
    });
    await shot(page, label, 'event-refused', false);
  } catch (e) {
    await shot(page, label, 'failure').catch(() => {});
    throw e;
  } finally {
    await ctx.close();
  }
}

/** Every request the browser made: to the vm only, and nothing secret in it. */
async function checkRequests() {
  const all = await Promise.all(requests);
  const secretIn = (s) => s.includes(PASSPHRASE) || s.includes(encodeURIComponent(PASSPHRASE)) || /AGE-SECRET-KEY/i.test(s);
  let worker = 0;
  for (const r of all) {
    const u = new URL(r.url);
    const ok =
      u.origin === ORIGIN ||
      (u.protocol === 'blob:' && r.url.startsWith('blob:' + ORIGIN + '/')) ||
      u.protocol === 'data:';
    if (!ok) fail(`${r.label}: a request to another origin: ${r.method} ${r.url}`);
    if (secretIn(r.url)) fail(`${r.label}: the URL of ${r.method} ${u.pathname} carries the passphrase or an identity`);
    if (secretIn(JSON.stringify(r.headers))) fail(`${r.label}: a header of ${r.method} ${u.pathname} carries the passphrase or an identity`);
    if (r.body && (secretIn(r.body.toString('utf8')) || secretIn(r.body.toString('latin1')))) fail(`${r.label}: the body of ${r.method} ${u.pathname} carries the passphrase or an identity`);
    if (u.pathname === '/assets/worker.js') worker++;
  }
  say(`${all.length} requests checked (${[...new Set(all.map((r) => new URL(r.url).origin))].join(', ')}); the key worker loaded ${worker} times`);
  if (!worker) fail('the key worker was never loaded (its requests could not be watched)');
}

const browser = await launch();
say(`chromium ${browser.version()} against ${VM_URL}; screenshots in ${ARTIFACTS}`);
for (const [label, options] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  try {
    await ownerVisit(browser, label, options);
  } catch {
    /* listed in failures; the other visits still run */
  }
}
try {
  await viewerVisit(browser);
} catch {
  /* listed */
}
await checkRequests();
await browser.close();

if (failures.length) {
  console.log(`\n${failures.length} failure(s):\n- ${failures.join('\n- ')}\nscreenshots: ${ARTIFACTS}`);
  process.exit(1);
}
console.log(`\nOK: every check held; screenshots in ${ARTIFACTS}`);
