// What the browser scripts (app.mjs, bench.mjs) share: launching Debian's chromium through
// playwright-core (no browser is ever downloaded), signing in and unlocking by the automation
// contract (docs/web.md), and the page's own navigation.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`FAIL: the environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'], headless: true });
}

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

/** Signs in with the owner token (the input named `token`). */
export async function signInWithToken(page, token) {
  await page.locator('input[name="token"]').fill(token);
  await page.locator('form button[type="submit"]').click();
  await page.locator('input[name="passphrase"]').waitFor({ timeout: 20_000 });
}

/** Signs in with a user name and password (the inputs named `username` and `password`). */
export async function signInWithPassword(page, username, password) {
  await page.locator('input[name="username"]').fill(username);
  await page.locator('input[name="password"]').fill(password);
  await page.locator('form button[type="submit"]').click();
  await page.locator('input[name="passphrase"]').waitFor({ timeout: 20_000 });
}

/** Types the passphrase and submits (the input named `passphrase`). */
export async function submitPassphrase(page, passphrase) {
  const input = page.locator('input[name="passphrase"]');
  await input.fill(passphrase);
  await input.press('Enter');
}

/**
 * Goes to screen `name` by the app's own links: the side menu on a desktop, the bottom bar or
 * the "More" sheet on a phone. Waits for the hash to change.
 */
export async function navigate(page, name) {
  const link = page.locator(`nav a[href="#/${name}"]:visible`).first();
  if (await link.count()) {
    await link.click();
  } else {
    const more = page.locator('.more-btn:visible');
    if (!(await more.count())) throw new Error(`no visible link to #/${name} and no "More" menu`);
    await more.click();
    const item = page.locator(`.menu-panel a[href="#/${name}"]`);
    await item.waitFor({ timeout: 5_000 }).catch(() => {
      throw new Error(`the "More" menu has no link to #/${name}`);
    });
    await item.click();
  }
  await page.waitForFunction((n) => location.hash.startsWith('#/' + n), name, { timeout: 5_000 });
}

/**
 * Waits until the screen in <main> shows its heading and nothing in it is loading (no
 * `.loading`, no spinner), and the page made no request for a moment.
 */
export async function settle(page, what, timeout = 20_000) {
  await page.locator('main .page-head h1').first().waitFor({ timeout });
  try {
    await page.waitForFunction(() => !document.querySelector('main .loading, main .spinner, main [aria-busy="true"]'), null, {
      timeout,
      polling: 100,
    });
  } catch {
    const left = await page.evaluate(() =>
      [...document.querySelectorAll('main .loading, main .spinner, main [aria-busy="true"]')].map((e) => (e.closest('[class]')?.className || '') + ': ' + (e.textContent || '').trim()).slice(0, 5),
    );
    throw new Error(`${what}: still loading after ${timeout} ms (${left.join('; ')})`);
  }
  await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => {});
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
