// Walks every flow of the web UI as a person would, in headless Chromium (Debian's, driven by playwright-core),
// against a running Gatehouse (scripts/test-ui starts it): login with password + TOTP (codes from oathtool) and
// with the CLI authenticator approving the number the page shows; password reset by a mailed code and by the
// email link; self-unlock; registration; password change on the account page; the lock message. Every page is
// checked with axe-core (no serious or critical violation) and for CSP violations; screenshots go to
// docs/screenshots/. The same reset walk runs again at 360 px wide and with JavaScript disabled.
//
// Environment: GATEHOUSE_URL, GATEHOUSE_DATA (the server's data directory: outbox), GATEHOUSE_BIN (the CLI with
// the server's environment), SCREENSHOTS (directory), CHROMIUM (default /usr/bin/chromium).

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BASE = process.env.GATEHOUSE_URL;
const DATA = process.env.GATEHOUSE_DATA;
const BIN = process.env.GATEHOUSE_BIN;
const SHOTS = process.env.SCREENSHOTS;
const PW = 'Old-Cobalt-Lantern-1';
const failures = [];
const checked = new Set();

function fail(message) {
  failures.push(message);
  console.error(`FAIL ${message}`);
}

function expect(cond, message) {
  if (!cond) fail(message);
}

function cli(...args) {
  return execFileSync(BIN, args, { encoding: 'utf8', input: args.includes('--password-stdin') ? `${PW}\n` : undefined });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

const usedLinks = new Set();

// The link of the newest mail to `to` whose link was not used yet.
async function newLink(to) {
  for (let i = 0; i < 200; i++) {
    const links = [];
    for (let n = 1; n <= countTo(to); n++) {
      const link = (await mailTo(to, n)).match(/https?:\/\/\S+token=[\w-]+/)?.[0];
      if (link && !usedLinks.has(link)) links.push(link);
    }
    if (links.length) {
      usedLinks.add(links[links.length - 1]);
      return links[links.length - 1];
    }
    await sleep(50);
  }
  throw new Error(`no new link to ${to}`);
}

// The newest mail (quoted-printable decoded) to `to`, waiting for the `n`-th.
async function mailTo(to, n = 1) {
  const dir = path.join(DATA, 'outbox');
  for (let i = 0; i < 200; i++) {
    const mails = readdirSync(dir)
      .filter((f) => f.endsWith('.eml'))
      .map((f) => ({ f, t: statSync(path.join(dir, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f))
      .map(({ f }) => readFileSync(path.join(dir, f), 'utf8'))
      .filter((m) => m.includes(`To: ${to}`) || m.includes(`<${to}>`));
    if (mails.length >= n) {
      return mails[n - 1].replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    }
    await sleep(50);
  }
  throw new Error(`no mail #${n} to ${to}`);
}

const codeIn = (mail) => mail.split(/\r?\n/).map((l) => l.trim()).find((l) => /^\d{8}$/.test(l));
const usedCodes = new Set();

// The code of the newest mail to `to` whose code was not used yet.
async function newCode(to) {
  for (let i = 0; i < 200; i++) {
    const codes = [];
    for (let n = 1; n <= countTo(to); n++) {
      const code = codeIn(await mailTo(to, n));
      if (code && !usedCodes.has(code)) codes.push(code);
    }
    if (codes.length) {
      const code = codes[codes.length - 1];
      usedCodes.add(code);
      return code;
    }
    await sleep(50);
  }
  throw new Error(`no new code to ${to}`);
}

// Checks the page once per distinct step: axe (serious/critical), a CSP header, a screenshot.
async function check(page, name) {
  const url = new URL(page.url());
  if (checked.has(name)) return;
  checked.add(name);
  // Without JavaScript nothing can run axe in the page: those pages are the same markup as the checked ones.
  if (name.endsWith('-nojs')) {
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    return;
  }
  let result;
  for (let attempt = 0; ; attempt++) {
    try {
      await page.waitForLoadState('load');
      await page.evaluate(AXE);
      result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
      break;
    } catch (e) {
      // A page that moves on by itself (an approval arrived) navigated meanwhile: check the one it shows now.
      if (attempt >= 3 || !/context was destroyed|navigat/i.test(String(e))) throw e;
      await sleep(300);
    }
  }
  for (const v of result.violations.filter((v) => ['serious', 'critical'].includes(v.impact))) {
    fail(`${name} (${url.pathname}): axe ${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Fills the fields of the form whose op is `op` and submits it; waits for the next page.
async function submit(page, op, fields = {}) {
  const form = page.locator(`form:has(input[name="op"][value="${op}"])`).first();
  expect((await form.count()) === 1, `no form ${op} on ${page.url()}`);
  for (const [name, value] of Object.entries(fields)) {
    await form.locator(`[name="${name}"]`).fill(value);
  }
  await Promise.all([page.waitForLoadState('load'), page.waitForNavigation({ waitUntil: 'load' }), form.locator('[type="submit"]').first().click()]);
}

// Waits until the page (moving on by itself) no longer has form `op`.
async function waitUntilGone(page, op, timeout = 20000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    try {
      await page.waitForLoadState('load');
      await page.waitForSelector('#step-heading', { timeout: 2000 });
      if (!(await hasForm(page, op))) {
        await page.waitForLoadState('load');
        return;
      }
    } catch {
      // The page is navigating.
    }
    await sleep(250);
  }
  fail(`form ${op} still on ${page.url()} after ${timeout} ms`);
}

// Picks `option` on a selection page.
async function choose(page, option) {
  const button = page.locator(`form:has(input[name="option"][value="${option}"]) [type="submit"]`);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
}

async function hasForm(page, op) {
  return (await page.locator(`form:has(input[name="op"][value="${op}"])`).count()) > 0;
}

async function newPage(browser, options = {}) {
  const context = await browser.newContext({ locale: 'en-US', ...options });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/.test(msg.text())) fail(`CSP: ${msg.text()}`);
  });
  page.on('pageerror', (e) => fail(`script error on ${page.url()}: ${e.message}`));
  return { context, page };
}

async function checkHeaders(page, url) {
  const response = await page.goto(url);
  const h = response.headers();
  expect(/script-src 'self'/.test(h['content-security-policy'] ?? ''), `CSP header missing on ${url}`);
  expect(/frame-ancestors 'none'/.test(h['content-security-policy'] ?? ''), `frame-ancestors missing on ${url}`);
  return response;
}

async function login(page, username, password, name = 'login') {
  await checkHeaders(page, `${BASE}/ui/app/auth/login`);
  await check(page, name);
  await submit(page, 'password', { username, password });
}

// Password + TOTP: enrolled on the account page, codes from oathtool.
async function totpWalk(browser) {
  const { context, page } = await newPage(browser);
  await login(page, 'tina', PW);
  expect(page.url().endsWith('/ui/app/account'), `tina: not on the account page: ${page.url()}`);
  await check(page, 'account');
  await submit(page, 'totp-enroll');
  if (await hasForm(page, 'reauthenticate')) {
    await submit(page, 'reauthenticate', { password: PW });
    await submit(page, 'totp-enroll');
  }
  const secret = (await page.locator('code').allTextContents()).map((t) => t.trim()).find((t) => /^[A-Z2-7]{16,}$/.test(t));
  expect(secret, 'no TOTP secret on the account page');
  await check(page, 'account-totp-enroll');
  await submit(page, 'totp-confirm', { otp: execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim() });
  expect((await page.locator('[role="status"]').count()) > 0, 'tina: no confirmation after the TOTP enrollment');
  // The rest of the account page: phone, secret answers, an authenticator activation.
  await submit(page, 'phone-set', { phone: '+41 79 555 00 11' });
  expect(JSON.parse(cli('user', 'show', 'tina', '--json')).context.phone === '+41795550011', 'tina: phone not set');
  await submit(page, 'answers-set', { answer_0: 'Rex the dog', answer_1: 'Winterthur', answer_2: 'Lindenhof school' });
  await check(page, 'account-saved');
  await submit(page, 'device-activate');
  expect((await page.locator('svg').count()) > 0, 'tina: no activation QR code');
  await check(page, 'account-activation');
  await submit(page, 'logout');
  await login(page, 'tina', PW);
  if (await hasForm(page, 'select')) {
    await check(page, 'login-selection');
    await choose(page, 'OATH_OTP');
  }
  await check(page, 'login-totp');
  // The next 30-s window: a code is used once.
  await sleep(1000);
  await submit(page, 'totp', { otp: execFileSync('oathtool', ['--totp', '-b', '--now', new Date(Date.now() + 30000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC', secret], { encoding: 'utf8' }).trim() });
  if (!page.url().endsWith('/ui/app/account')) {
    // Too early for the next window's code: the current one.
    await submit(page, 'totp', { otp: execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim() });
  }
  expect(page.url().endsWith('/ui/app/account'), `tina: TOTP login did not reach the account: ${page.url()}`);
  await context.close();
}

// The authenticator: the page shows a number, the CLI approves it, the page moves on by itself.
async function pushWalk(browser, store, options = {}, suffix = '') {
  const { context, page } = await newPage(browser, options);
  await login(page, 'nora', PW, `login${suffix}`);
  expect(await hasForm(page, 'app-poll'), `nora: no authenticator step: ${page.url()}`);
  const number = (await page.locator('.pick-number').first().textContent())?.trim();
  await check(page, `login-authenticator${suffix}`);
  const pending = JSON.parse(cli('authenticator', '--store', store, 'pending', '--wait', '10', '--json'));
  expect(pending.length === 1, `nora: ${pending.length} pending approvals`);
  cli('authenticator', '--store', store, 'approve', pending[0].id, '--number', number);
  if (options.javaScriptEnabled === false) {
    // Without a script the person says when they approved.
    await submit(page, 'app-poll');
  }
  await page.waitForURL('**/ui/app/account', { timeout: 20000 });
  await context.close();
}

// Password reset with the mailed code; `options` for the 360-px and no-JavaScript runs.
async function resetWalk(browser, options, suffix) {
  const { context, page } = await newPage(browser, options);
  await checkHeaders(page, `${BASE}/ui/app/auth/login`);
  await page.locator('a[href*="self-service/flow/password-reset"]').first().click();
  await page.waitForLoadState('load');
  await check(page, `reset-identify${suffix}`);
  await submit(page, 'identify', { username: 'rita' });
  await check(page, `reset-code${suffix}`);
  await submit(page, 'email-otp', { otp: await newCode('rita@example.com') });
  await check(page, `reset-password${suffix}`);
  const fresh = `Fresh-Marble-Otter-${Math.floor(Math.random() * 900 + 100)}`;
  await submit(page, 'password', { new_password: fresh, new_password_repeat: fresh + 'x' });
  expect(await page.locator('[role="alert"], [id^="err-"]').count() > 0, `reset${suffix}: differing passwords not reported`);
  await submit(page, 'password', { new_password: fresh, new_password_repeat: fresh });
  await check(page, `reset-done${suffix}`);
  expect(!(await hasForm(page, 'password')), `reset${suffix}: still asks for a password`);
  await context.close();
  return fresh;
}

function countTo(to) {
  const dir = path.join(DATA, 'outbox');
  return readdirSync(dir).filter((f) => f.endsWith('.eml') && readFileSync(path.join(dir, f), 'utf8').includes(to)).length;
}

// The email link: the token is taken from the address bar once used.
async function linkWalk(browser, options = {}, suffix = '') {
  const { context, page } = await newPage(browser, options);
  await page.goto(`${BASE}/ui/app/self-service/flow/password-reset-link`);
  await submit(page, 'identify', { username: 'lena' });
  const link = await newLink('lena@example.com');
  await page.goto(link);
  expect(!page.url().includes('token='), `the link token stays in the address bar: ${page.url()}`);
  await check(page, `link-password${suffix}`);
  const fresh = `Quiet-Harbor-Gull-${Math.floor(Math.random() * 900 + 100)}`;
  await submit(page, 'password', { new_password: fresh, new_password_repeat: fresh });
  expect(!(await hasForm(page, 'password')), `link: the password was not set: ${page.url()}`);
  await context.close();
}

// Wrong passwords lock; the page says so; the authenticator unlocks through the self-unlock flow.
async function lockAndUnlockWalk(browser, store) {
  const { context, page } = await newPage(browser);
  for (let i = 0; i < 7; i++) {
    await login(page, 'ulla', 'Wrong-Password-0');
  }
  await check(page, 'login-locked');
  const alert = (await page.locator('[role="alert"]').allTextContents()).join(' ');
  expect(alert.trim().length > 0, 'no lock message');
  await page.goto(`${BASE}/ui/app/auth/login`);
  await page.locator('a[href*="self-service/flow/self-unlock"]').first().click();
  await page.waitForLoadState('load');
  await submit(page, 'identify', { username: 'ulla' });
  if (await hasForm(page, 'select')) {
    await choose(page, 'APP_2FA');
  }
  await check(page, 'unlock-authenticator');
  const number = (await page.locator('.pick-number').first().textContent())?.trim();
  const pending = JSON.parse(cli('authenticator', '--store', store, 'pending', '--wait', '10', '--json'));
  cli('authenticator', '--store', store, 'approve', pending[0].id, '--number', number);
  await waitUntilGone(page, 'app-poll');
  await check(page, 'unlock-done');
  const shown = JSON.parse(cli('user', 'show', 'ulla', '--json'));
  expect(shown.locked === false, 'ulla is still locked');
  await context.close();
}

// Registration with the CAPTCHA solved by the page's script, the mailed code, the password twice.
async function registrationWalk(browser) {
  const { context, page } = await newPage(browser);
  await checkHeaders(page, `${BASE}/ui/app/registration`);
  await check(page, 'registration-data');
  await page.fill('[name="email"]', 'bad-address');
  await page.fill('[name="givenname"]', 'Reg');
  await page.fill('[name="surname"]', 'Walker');
  await page.waitForFunction(() => document.querySelector('input[name="altcha"]')?.value, null, { timeout: 60000 });
  await Promise.all([page.waitForNavigation(), page.locator('form:has(input[name="op"][value="data"]) [type="submit"]').click()]);
  expect((await page.locator('#err-email').count()) === 1, 'registration: no error next to the email field');
  await check(page, 'registration-data-error');
  await page.fill('[name="email"]', 'reg.walker@example.com');
  await page.waitForFunction(() => document.querySelector('input[name="altcha"]')?.value, null, { timeout: 60000 });
  await Promise.all([page.waitForNavigation(), page.locator('form:has(input[name="op"][value="data"]) [type="submit"]').click()]);
  await check(page, 'registration-code');
  await submit(page, 'email-otp', { otp: await newCode('reg.walker@example.com') });
  await check(page, 'registration-password');
  await submit(page, 'password', { password: 'Lantern-Meadow-Quartz-17', password_repeat: 'Lantern-Meadow-Quartz-17' });
  await check(page, 'registration-acknowledge');
  await submit(page, 'acknowledge');
  await check(page, 'registration-done');
  await login(page, 'reg.walker@example.com', 'Lantern-Meadow-Quartz-17');
  expect(page.url().endsWith('/ui/app/account'), `the registered account cannot log in: ${page.url()}`);
  // The password change on the account page.
  await submit(page, 'password-change', { old_password: 'Lantern-Meadow-Quartz-17', new_password: 'Velvet-Canyon-Orbit-29', new_password_repeat: 'Velvet-Canyon-Orbit-29' });
  await check(page, 'account-password-changed');
  await submit(page, 'logout');
  await login(page, 'reg.walker@example.com', 'Velvet-Canyon-Orbit-29');
  expect(page.url().endsWith('/ui/app/account'), `the changed password does not log in: ${page.url()}`);
  await context.close();
}

// The same bytes for a real and an unknown account (token values aside).
async function enumerationWalk(browser) {
  const pages = [];
  for (const name of ['rita', 'nobody-here']) {
    const { context, page } = await newPage(browser);
    await page.goto(`${BASE}/ui/app/self-service/flow/password-reset`);
    await submit(page, 'identify', { username: name });
    pages.push((await page.content()).replace(/value="[0-9a-f]{64}"/g, 'value="<csrf>"'));
    await context.close();
  }
  expect(pages[0] === pages[1], 'the reset page tells a real account from an unknown one');
}

// The widget in a third-party application (examples/relying-app, widget mode): from an origin other than the
// registered one the widget's calls are refused and nothing reaches the phone; from the registered origin the page
// shows a number, the CLI approves it, and the browser lands on the application's callback with a token the
// application exchanges at /v1/token. After a denial on the phone the widget asks for a code instead.
async function widgetWalk(browser) {
  const port = Number(execFileSync('python3', ['-c', 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'], { encoding: 'utf8' }).trim());
  const origin = `http://localhost:${port}`;
  const key = cli('app', 'create', 'widget-shop', '--origin', origin, '--callback', `${origin}/login/callback`).trim();
  const app = spawn(process.env.RELYING_APP_BIN, ['--listen', `127.0.0.1:${port}`, '--database', path.join(DATA, 'widget-shop.db')], {
    env: { ...process.env, GATEHOUSE_URL: BASE, GATEHOUSE_API_KEY: key, RELYING_APP_TWO_STEP: 'widget' },
    stdio: 'ignore',
  });
  const phone = path.join(DATA, 'widget-phone.json');
  try {
    for (let i = 0; i < 200; i++) {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok) break;
      await sleep(50);
    }
    const email = 'wanda@example.com';
    const password = 'a long password of the shop';
    const { context, page } = await newPage(browser);
    const fill = async (action, fields) => {
      const form = page.locator(`form[action="${action}"]`).first();
      for (const [name, value] of Object.entries(fields)) await form.locator(`[name="${name}"]`).fill(value);
      await Promise.all([page.waitForLoadState('load'), form.locator('button').first().click()]);
    };
    await page.goto(`${origin}/signup`);
    await fill('/signup', { email, password });
    await fill('/account/two-step/enable', {});
    const uri = (await page.locator('#activation-uri').textContent()).trim();
    cli('authenticator', '--store', phone, 'enroll', uri);
    await fill('/account/two-step/confirm', {});
    expect((await page.content()).includes('Two-step verification is on'), `widget: not enabled: ${page.url()}`);
    await fill('/logout', {});

    // Another origin (the same server by its address, not the registered name): refused, nothing pushed.
    const other = await newPage(browser);
    other.page.removeAllListeners('console');
    await other.page.goto(`http://127.0.0.1:${port}/login`);
    const otherForm = other.page.locator('form[action="/login"]');
    await otherForm.locator('[name="email"]').fill(email);
    await otherForm.locator('[name="password"]').fill(password);
    await Promise.all([other.page.waitForURL('**/login/two-step'), otherForm.locator('button').click()]);
    await other.page.locator('[data-gatehouse="status"]').filter({ hasText: /unavailable|Failed to fetch/i }).waitFor({ timeout: 10000 }).catch(async (e) => {
      throw new Error(`${e.message}\nthe foreign page shows: ${await other.page.locator('body').innerText()}`);
    });
    expect((await other.page.locator('[data-gatehouse="number"]').count()) === 0, 'widget: a number shown on a foreign origin');
    const none = JSON.parse(cli('authenticator', '--store', phone, 'pending', '--wait', '1', '--json'));
    expect(none.length === 0, `widget: ${none.length} requests pushed from a foreign origin`);
    await other.context.close();

    // The registered origin: the number on the page, picked on the phone, the callback, the account.
    await page.goto(`${origin}/login`);
    await fill('/login', { email, password });
    expect(page.url().endsWith('/login/two-step'), `widget: not at the second step: ${page.url()}`);
    const number = (await page.locator('[data-gatehouse="number"]').textContent({ timeout: 10000 })).trim();
    await check(page, 'widget-number');
    const pending = JSON.parse(cli('authenticator', '--store', phone, 'pending', '--wait', '10', '--json'));
    expect(pending.length === 1 && pending[0].attributes.choices.map(String).includes(number), `widget: the phone does not offer ${number}`);
    cli('authenticator', '--store', phone, 'approve', pending[0].id, '--number', number);
    await page.waitForURL('**/account', { timeout: 20000 });
    await fill('/logout', {});

    // Denied on the phone: the widget asks for a code from the authenticator, which finishes the login.
    await page.goto(`${origin}/login`);
    await fill('/login', { email, password });
    await page.locator('[data-gatehouse="number"]').waitFor({ timeout: 10000 });
    const denied = JSON.parse(cli('authenticator', '--store', phone, 'pending', '--wait', '10', '--json'));
    cli('authenticator', '--store', phone, 'deny', denied[0].id);
    await page.locator('[data-gatehouse="code"]').waitFor({ timeout: 20000 });
    await check(page, 'widget-code');
    await page.locator('[data-gatehouse="code"]').fill(cli('authenticator', '--store', phone, 'code').trim());
    await Promise.all([page.waitForURL('**/account', { timeout: 20000 }), page.locator('[data-gatehouse="send-code"]').click()]);
    await context.close();
  } finally {
    app.kill();
  }
}

async function main() {
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  const store = path.join(DATA, 'authenticator.json');
  for (const [user, email] of [['tina', 'tina@example.com'], ['nora', 'nora@example.com'], ['rita', 'rita@example.com'], ['lena', 'lena@example.com'], ['ulla', 'ulla@example.com']]) {
    cli('user', 'add', user, '--email', email, '--password-stdin');
  }
  for (const user of ['nora', 'ulla']) {
    const uri = cli('user', 'activate-authenticator', user).split('\n')[0].trim();
    cli('authenticator', '--store', store, 'enroll', uri);
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
  const walks = [
    ['login with TOTP', () => totpWalk(browser)],
    ['login with the authenticator', () => pushWalk(browser, store)],
    ['password reset', () => resetWalk(browser, {}, '')],
    ['password reset at 360 px', () => resetWalk(browser, { viewport: { width: 360, height: 740 } }, '-360')],
    ['password reset without JavaScript', () => resetWalk(browser, { javaScriptEnabled: false }, '-nojs')],
    ['reset by email link', () => linkWalk(browser)],
    ['reset by email link at 360 px', () => linkWalk(browser, { viewport: { width: 360, height: 740 } }, '-360')],
    ['reset by email link without JavaScript', () => linkWalk(browser, { javaScriptEnabled: false }, '-nojs')],
    ['login with the authenticator at 360 px', () => pushWalk(browser, store, { viewport: { width: 360, height: 740 } }, '-360')],
    ['login with the authenticator without JavaScript', () => pushWalk(browser, store, { javaScriptEnabled: false }, '-nojs')],
    ['lock and self-unlock', () => lockAndUnlockWalk(browser, store)],
    ['registration and password change', () => registrationWalk(browser)],
    ['no enumeration', () => enumerationWalk(browser)],
    ['the widget in a third-party application', () => widgetWalk(browser)],
  ];
  const only = process.env.WALKS?.split(',').filter(Boolean);
  for (const [name, walk] of walks.filter(([n]) => !only || only.some((o) => n.includes(o)))) {
    try {
      await walk();
      console.log(`ok   ${name}`);
    } catch (e) {
      fail(`${name}: ${e.stack ?? e}`);
    }
  }
  await browser.close();
  if (failures.length) {
    console.error(`${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log(`all walks passed; ${checked.size} pages checked with axe`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
