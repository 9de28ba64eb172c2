#!/usr/bin/env node
/*
 * console.mjs - end-to-end test of the ME web console (web/) in headless
 * Chromium, driven by playwright-core against a running msspd.
 *
 *   node tests/web/console.mjs --url https://127.0.0.1:PORT --data-dir DIR --out DIR
 *        [--insecure]
 *
 * Signs in with the account certificates `msspd init` writes under
 * DIR/admin/ (admin, admin2, auditor), walks the console as an admin
 * (session, dashboard, user create / search / detail / activation code /
 * suspend / resume, APs, dual control, audit and its verification), then
 * as the auditor (no action controls; a mutating request forced from the
 * page is refused with 403), checks the security headers and that the
 * browser reported no console error and no CSP violation, and takes
 * screenshots that must be real pictures (PNG decoded here with zlib).
 * Prints TAP ("ok N - ...", plan last); exit 1 on any failure.
 *
 * Trust: Playwright presents client certificates through its own TLS
 * proxy inside this Node process, so the ME's server certificate is
 * checked by Node, not by Chromium.  Node cannot be given a CA per
 * context, but it reads NODE_EXTRA_CA_CERTS at start: this script
 * re-runs itself with NODE_EXTRA_CA_CERTS=DIR/tls/ca.crt, so the ME's
 * certificate is verified against the development CA (ignoreHTTPSErrors
 * stays false).  --insecure skips the verification instead.
 *
 * Environment: CHROMIUM (default /usr/bin/chromium).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import zlib from 'node:zlib';

const VIEWPORT = { width: 1280, height: 800 };
const STEP_TIMEOUT_MS = 10000;
const STATS_REFRESH_WAIT_MS = 9000; /* the console refreshes every 5 s */
/* The flags Chromium needs on this kind of machine (root, no GPU, closed
 * network): without the background-networking ones it keeps trying to
 * reach Google's hosts. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage'];
const CSP_DIRECTIVES = ["default-src 'none'", "script-src 'self'", "style-src 'self'",
  "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"];

/* ---- arguments and the CA re-run ------------------------------------- */

function usage(msg) {
  if (msg) console.error('console.mjs: ' + msg);
  console.error('usage: node console.mjs --url https://127.0.0.1:PORT --data-dir DIR --out DIR [--insecure]');
  process.exit(2);
}

const opts = { insecure: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--insecure') opts.insecure = true;
  else if (a === '--url' || a === '--data-dir' || a === '--out') {
    if (i + 1 >= process.argv.length) usage(a + ' needs a value');
    opts[a.slice(2)] = process.argv[++i];
  } else usage('unknown argument ' + a);
}
if (!opts.url || !opts['data-dir'] || !opts.out) usage();
const URL_BASE = opts.url.replace(/\/+$/, '');
const DIR = path.resolve(opts['data-dir']);
const OUT = path.resolve(opts.out);
const CA = path.join(DIR, 'tls', 'ca.crt');

if (!opts.insecure && process.env.NODE_EXTRA_CA_CERTS !== CA) {
  if (process.env.MSSP_CONSOLE_RERUN) usage('NODE_EXTRA_CA_CERTS was not taken');
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: CA, MSSP_CONSOLE_RERUN: '1' },
  });
  process.exit(r.status === null ? 1 : r.status);
}

/* ---- TAP ------------------------------------------------------------- */

let n = 0;
let failed = 0;
class Bail extends Error {}

function ok(desc) {
  n++;
  console.log('ok ' + n + ' - ' + desc);
}
function notOk(desc, why) {
  n++;
  failed++;
  console.log('not ok ' + n + ' - ' + desc);
  if (why) for (const l of String(why).split('\n').slice(0, 8)) console.log('# ' + l);
}
function skip(desc, why) {
  n++;
  console.log('ok ' + n + ' - ' + desc + ' # SKIP ' + why);
}
/* One check: fn throws (or returns false / a string) on failure.  A
 * critical failure ends the phase it belongs to. */
async function step(desc, fn, critical) {
  try {
    const r = await fn();
    if (r === false || typeof r === 'string') {
      notOk(desc, r === false ? '' : r);
      if (critical) throw new Bail(desc);
    } else {
      ok(desc);
    }
  } catch (e) {
    if (e instanceof Bail) throw e;
    notOk(desc, e && e.message ? e.message : e);
    if (critical) throw new Bail(desc);
  }
}
async function phase(name, fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Bail) console.log('# ' + name + ': stopped after a failed step');
    else notOk(name + ': unexpected error', e && e.stack ? e.stack : e);
  }
}

/* ---- PNG ------------------------------------------------------------- */

const PNG_SIG = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

/* Decode an 8-bit, non-interlaced PNG (what Chromium writes) into raw
 * pixels: {width, height, channels, pixels}.  Throws on anything else. */
function decodePng(buf) {
  if (buf.length < 8 || !buf.subarray(0, 8).equals(PNG_SIG)) throw new Error('not a PNG');
  let off = 8;
  let hdr = null;
  const idat = [];
  for (;;) {
    if (off + 12 > buf.length) throw new Error('truncated PNG');
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) throw new Error('truncated chunk ' + type);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (typeof zlib.crc32 === 'function' &&
      zlib.crc32(buf.subarray(off + 4, off + 8 + len)) >>> 0 !== buf.readUInt32BE(off + 8 + len)) {
      throw new Error('CRC mismatch in ' + type);
    }
    if (type === 'IHDR') {
      hdr = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), depth: data[8],
        ctype: data[9], interlace: data[12] };
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  if (!hdr) throw new Error('no IHDR');
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[hdr.ctype];
  if (hdr.depth !== 8 || !channels || hdr.interlace !== 0) {
    throw new Error('unsupported PNG (depth ' + hdr.depth + ', colour type ' + hdr.ctype + ')');
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = hdr.width * channels;
  if (raw.length !== hdr.height * (stride + 1)) throw new Error('bad image data length');
  const px = Buffer.alloc(hdr.height * stride);
  for (let y = 0; y < hdr.height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const up = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[row + x - channels] : 0;
      const b = y > 0 ? px[up + x] : 0;
      const c = x >= channels && y > 0 ? px[up + x - channels] : 0;
      let v = raw[src + x];
      switch (f) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error('bad filter ' + f + ' in row ' + y);
      }
      px[row + x] = v & 255;
    }
  }
  return { width: hdr.width, height: hdr.height, channels, pixels: px };
}

/* The number of distinct colours and the share of the most common one. */
function colourStats(img) {
  const counts = new Map();
  const ch = img.channels;
  for (let i = 0; i < img.pixels.length; i += ch) {
    const k = ch >= 3 ? (img.pixels[i] << 16) | (img.pixels[i + 1] << 8) | img.pixels[i + 2] : img.pixels[i];
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  let top = 0;
  for (const v of counts.values()) if (v > top) top = v;
  return { distinct: counts.size, dominant: top / (img.width * img.height) };
}

/* ---- helpers --------------------------------------------------------- */

function cert(name) {
  return { crt: path.join(DIR, 'admin', name + '.crt'), key: path.join(DIR, 'admin', name + '.key') };
}

/* A plain HTTPS GET with an account certificate, verified against the
 * development CA (or not, with --insecure): the server side of the
 * checks, independent of the browser. */
/* GET with the account's certificate; an API path other than the session
 * and the API description carries the account's CSRF token (the ME
 * refuses reads without it), fetched from the session first. */
async function directGet(p, who) {
  const headers = {};
  if (p.startsWith('/api/v1/') && p !== '/api/v1/session' && p !== '/api/v1/openapi.json') {
    const s = await directGet('/api/v1/session', who);
    headers['X-MSSP-CSRF'] = JSON.parse(s.body).csrf;
  }
  return rawGet(p, who, headers);
}

function rawGet(p, who, headers) {
  const c = cert(who);
  return new Promise((resolve, reject) => {
    const req = https.get(URL_BASE + p, {
      headers,
      cert: fs.readFileSync(c.crt), key: fs.readFileSync(c.key),
      ca: opts.insecure ? undefined : fs.readFileSync(CA),
      rejectUnauthorized: !opts.insecure, timeout: STEP_TIMEOUT_MS,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const problems = []; /* console errors, page errors, CSP violations */

async function newPage(browser, who) {
  const c = cert(who);
  const ctx = await browser.newContext({
    viewport: VIEWPORT,
    deviceScaleFactor: 1,
    ignoreHTTPSErrors: opts.insecure,
    clientCertificates: [{ origin: URL_BASE, certPath: c.crt, keyPath: c.key }],
  });
  ctx.setDefaultTimeout(STEP_TIMEOUT_MS);
  /* Injected through DevTools, so the page's CSP does not apply to it:
   * makes every violation a console error the listener below sees. */
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
    });
  });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || /content security policy/i.test(m.text())) {
      problems.push(who + ': console ' + m.type() + ': ' + m.text());
    }
  });
  page.on('pageerror', (e) => problems.push(who + ': page error: ' + e.message));
  return { ctx, page };
}

async function screenshot(page, name) {
  const file = path.join(OUT, name + '.png');
  await page.screenshot({ path: file, fullPage: false });
  const img = decodePng(fs.readFileSync(file));
  if (img.width !== VIEWPORT.width || img.height !== VIEWPORT.height) {
    return 'size ' + img.width + 'x' + img.height + ', expected ' + VIEWPORT.width + 'x' + VIEWPORT.height;
  }
  const s = colourStats(img);
  if (s.distinct < 16 || s.dominant > 0.985) {
    return 'looks blank: ' + s.distinct + ' colours, the commonest covers ' + (s.dominant * 100).toFixed(1) + '%';
  }
  return true;
}

async function bannerHidden(page) {
  const b = page.locator('#banner');
  if (await b.isVisible()) return 'error banner: ' + (await b.innerText());
  return true;
}

async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.locator('#view h1').first().waitFor();
}

async function nav(page, name) {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true }).click();
  await page.locator('#view h1').first().waitFor();
}

/* A mutating request forced from the page's own context (same origin,
 * the session's CSRF token unless told otherwise). */
function forcedPost(page, p, body, withCsrf) {
  return page.evaluate(async ({ p, body, withCsrf }) => {
    const s = await (await fetch('/api/v1/session')).json();
    const h = { 'Content-Type': 'application/json' };
    if (withCsrf) h['X-MSSP-CSRF'] = s.csrf;
    const r = await fetch('/api/v1' + p, { method: 'POST', headers: h, body: JSON.stringify(body) });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    return { status: r.status, body: j };
  }, { p, body, withCsrf });
}

/* ---- the test -------------------------------------------------------- */

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const who of ['admin', 'auditor']) {
    for (const f of Object.values(cert(who))) {
      if (!fs.existsSync(f)) {
        notOk('account certificate ' + f + ' exists');
        console.log('1..' + n);
        process.exit(1);
      }
    }
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    notOk('playwright-core is installed (npm ci --prefix tests/web)', e.message);
    console.log('1..' + n);
    process.exit(1);
  }

  const msisdn = '+3584799' + String(Date.now() % 100000).padStart(5, '0');
  const apId = 'http://console-test-' + Date.now().toString(36) + '.ap/';

  await phase('server', async () => {
    await step('the ME answers with its certificate verified against ' +
      (opts.insecure ? '(nothing: --insecure)' : 'DIR/tls/ca.crt') + ' and the admin account certificate',
    async () => {
      const r = await directGet('/api/v1/session', 'admin');
      return r.status === 200 || 'status ' + r.status + ': ' + r.body.slice(0, 200);
    }, true);
    await step('the console page carries the Content-Security-Policy of me.md', async () => {
      const r = await directGet('/', 'admin');
      if (r.status !== 200) return 'GET / status ' + r.status;
      if (!/^text\/html/.test(r.headers['content-type'] || '')) return 'content type ' + r.headers['content-type'];
      const csp = r.headers['content-security-policy'] || '';
      const missing = CSP_DIRECTIVES.filter((d) => !csp.includes(d));
      return missing.length === 0 || 'CSP "' + csp + '" lacks ' + missing.join(', ');
    });
    await step('the console page sends X-Frame-Options DENY, nosniff and no-referrer', async () => {
      const r = await directGet('/', 'admin');
      const h = r.headers;
      return (String(h['x-frame-options']).toUpperCase() === 'DENY' &&
        h['x-content-type-options'] === 'nosniff' && h['referrer-policy'] === 'no-referrer') ||
        'headers: ' + JSON.stringify({ xfo: h['x-frame-options'], xcto: h['x-content-type-options'], rp: h['referrer-policy'] });
    });
    await step('the API answers with Cache-Control: no-store', async () => {
      const r = await directGet('/api/v1/session', 'admin');
      return /no-store/.test(r.headers['cache-control'] || '') || 'cache-control ' + r.headers['cache-control'];
    });
    await step('the console script and style are served as JavaScript and CSS', async () => {
      const js = await directGet('/static/app.js', 'admin');
      const css = await directGet('/static/app.css', 'admin');
      return (js.status === 200 && /javascript/.test(js.headers['content-type'] || '') &&
        css.status === 200 && /text\/css/.test(css.headers['content-type'] || '')) ||
        'app.js ' + js.status + ' ' + js.headers['content-type'] + ', app.css ' + css.status + ' ' + css.headers['content-type'];
    });
  });
  if (failed) {
    console.log('1..' + n);
    process.exit(1);
  }

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    await phase('admin', async () => {
      const { ctx, page } = await newPage(browser, 'admin');
      let mainResponse = null;
      await step('the console loads in Chromium with the admin certificate', async () => {
        mainResponse = await page.goto(URL_BASE + '/', { waitUntil: 'domcontentloaded' });
        return mainResponse.status() === 200 || 'status ' + mainResponse.status();
      }, true);
      await step('the browser received the CSP header on the page', async () => {
        const csp = (await mainResponse.allHeaders())['content-security-policy'] || '';
        return csp.includes("script-src 'self'") || 'CSP: "' + csp + '"';
      });
      await step('the session banner shows account admin, role admin', async () => {
        await page.locator('#session-role').waitFor();
        const role = (await page.locator('#session-role').innerText()).trim().toLowerCase();
        const acct = (await page.locator('#session-account').innerText()).trim();
        return (role === 'admin' && acct === 'admin') || 'account "' + acct + '", role "' + role + '"';
      }, true);

      await step('the dashboard shows numeric counters', async () => {
        await page.locator('.counter').first().waitFor();
        const vals = await page.locator('.counter .counter-value').allInnerTexts();
        const nums = vals.filter((v) => /^-?\d+(\.\d+)?$/.test(v.trim()));
        return nums.length >= 3 || 'counters: ' + JSON.stringify(vals);
      });
      await step('the dashboard refreshes its counters from /api/v1/stats', async () => {
        await page.waitForResponse((r) => r.url().endsWith('/api/v1/stats') && r.status() === 200,
          { timeout: STATS_REFRESH_WAIT_MS });
      });
      await step('screenshot: dashboard', () => screenshot(page, 'dashboard'));

      await step('a user is created through the form', async () => {
        await nav(page, 'Users');
        await page.getByRole('link', { name: 'Create user' }).click();
        await page.getByLabel('MSISDN', { exact: true }).fill(msisdn);
        await page.getByLabel('Given name').fill('Console');
        await page.getByLabel('Surname').fill('Tester');
        await page.getByLabel('Country (ISO 3166, 2 letters)').fill('FI');
        await page.getByLabel('Language').fill('en');
        await page.getByRole('button', { name: 'Create', exact: true }).click();
        await page.getByRole('heading', { level: 1, name: 'User ' + msisdn }).waitFor();
        return bannerHidden(page);
      }, true);
      await step('the search finds the new user', async () => {
        await nav(page, 'Users');
        await page.getByLabel('Search users').fill(msisdn.slice(0, 10));
        await page.getByRole('button', { name: 'Search', exact: true }).click();
        await page.locator('#user-results').getByRole('link', { name: msisdn, exact: true }).waitFor();
        return bannerHidden(page);
      }, true);
      await step('screenshot: users', () => screenshot(page, 'users'));
      await step('the user detail opens from the search result', async () => {
        await page.locator('#user-results').getByRole('link', { name: msisdn, exact: true }).click();
        await page.getByRole('heading', { level: 1, name: 'User ' + msisdn }).waitFor();
        await page.locator('#user-state').waitFor();
        for (const h of ['Devices', 'Keys', 'Certificates', 'Jobs', 'Recent transactions']) {
          await page.getByRole('heading', { level: 2, name: h, exact: true }).waitFor();
        }
        return bannerHidden(page);
      }, true);
      await step('screenshot: user detail', () => screenshot(page, 'user-detail'));
      await step('a new activation code is shown once as NNNN-NNNN-NNNN', async () => {
        await page.getByRole('button', { name: 'New activation code' }).click();
        await page.locator('#activation-code').waitFor();
        const code = (await page.locator('#activation-code').innerText()).trim();
        return /^\d{4}-\d{4}-\d{4}$/.test(code) || 'code "' + code + '"';
      });
      await step('suspend: the user state becomes suspended', async () => {
        await page.getByRole('button', { name: 'Suspend', exact: true }).click();
        await page.locator('#user-state', { hasText: 'suspended' }).waitFor();
        return bannerHidden(page);
      });
      await step('resume: the user state becomes active again', async () => {
        await page.getByRole('button', { name: 'Resume', exact: true }).click();
        await page.locator('#user-state', { hasText: 'active' }).waitFor();
        return bannerHidden(page);
      });

      await step('the APs page lists the demo AP', async () => {
        await nav(page, 'APs');
        const rows = page.locator('table.data tbody tr');
        await rows.first().waitFor();
        return (await rows.count()) >= 1;
      });
      await step('screenshot: APs', () => screenshot(page, 'aps'));
      await step('an AP detail opens with its state and the admin\'s actions', async () => {
        await page.locator('table.data tbody tr').first().getByRole('link').click();
        await page.locator('#ap-state').waitFor();
        await page.locator('#ap-actions').getByRole('button', { name: /^(Suspend|Resume)$/ }).first().waitFor();
        return bannerHidden(page);
      });
      await step('creating an AP answers "pending approval" (dual control)', async () => {
        await go(page, '#/aps/new');
        await page.getByLabel('AP id (URI)').fill(apId);
        await page.getByLabel('Name').fill('Console test AP');
        await page.getByLabel(/Client certificate SHA-256/).fill('c0'.repeat(32));
        await page.getByRole('button', { name: 'Create AP' }).click();
        await page.locator('#notice', { hasText: 'Pending approval' }).waitFor();
        return bannerHidden(page);
      });
      await step('the approval is listed as pending', async () => {
        await nav(page, 'Approvals');
        await page.locator('table.data tbody tr', { hasText: 'pending' }).first().waitFor();
        return bannerHidden(page);
      });

      await step('the audit page shows the user.create entry of the new user', async () => {
        await nav(page, 'Audit');
        await page.locator('#audit-list tbody tr').first().waitFor();
        const entry = page.locator('#audit-list tbody tr', { hasText: 'user.create' })
          .filter({ hasText: msisdn });
        /* a long log: the first page is the oldest; go to the newest */
        const jump = page.getByRole('button', { name: 'Jump to latest' });
        if ((await entry.count()) === 0 && (await jump.count()) > 0) {
          await jump.click();
          await page.locator('#audit-list caption', { hasText: 'after sequence' }).waitFor();
        }
        await entry.first().waitFor();
        return bannerHidden(page);
      });
      await step('"Verify chain" reports the audit chain ok', async () => {
        await page.getByRole('button', { name: 'Verify chain' }).click();
        await page.locator('#verify-result .verify').waitFor();
        const okAttr = await page.locator('#verify-result .verify').getAttribute('data-ok');
        return okAttr === 'true' || 'verify: ' + (await page.locator('#verify-result').innerText());
      });
      await step('screenshot: audit', () => screenshot(page, 'audit'));
      await step('the profiles page lists signature and registration profiles', async () => {
        await nav(page, 'Profiles');
        await page.getByRole('heading', { level: 2, name: 'Signature profiles' }).waitFor();
        await page.locator('table.data').first().waitFor();
        return bannerHidden(page);
      });
      await ctx.close();
    });

    await phase('admin2', async () => {
      if (!fs.existsSync(cert('admin2').crt)) {
        skip('a second admin approves the pending AP', 'no DIR/admin/admin2.crt');
        return;
      }
      const { ctx, page } = await newPage(browser, 'admin2');
      await step('a second admin approves the pending AP and it is listed', async () => {
        await page.goto(URL_BASE + '/#/approvals');
        const row = page.locator('table.data tbody tr', { hasText: 'pending' }).first();
        await row.getByRole('button', { name: 'Approve' }).click();
        await page.locator('#notice', { hasText: 'approved' }).waitFor();
        await nav(page, 'APs');
        await page.getByRole('link', { name: apId, exact: true }).waitFor();
        return bannerHidden(page);
      });
      await ctx.close();
    });

    await phase('ra', async () => {
      if (!fs.existsSync(cert('ra').crt)) {
        skip('the RA sees users with actions but no AP, approval or audit pages', 'no DIR/admin/ra.crt');
        return;
      }
      const { ctx, page } = await newPage(browser, 'ra');
      await step('the RA sees users with actions but no AP, approval or audit pages', async () => {
        await page.goto(URL_BASE + '/#/users/' + encodeURIComponent(msisdn));
        await page.locator('#user-state').waitFor();
        const links = await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').allInnerTexts();
        const want = ['Dashboard', 'Users', 'Profiles'];
        if (links.join(',') !== want.join(',')) return 'navigation: ' + links.join(', ');
        await page.locator('#user-actions').getByRole('button', { name: 'New activation code' }).waitFor();
        return (await page.locator('#key-request').count()) === 1 || 'no key request form';
      });
      await ctx.close();
    });

    let auditorPage = null;
    let auditorCtx = null;
    await phase('auditor', async () => {
      const { ctx, page } = await newPage(browser, 'auditor');
      auditorCtx = ctx;
      await step('the auditor signs in: the session banner shows role auditor', async () => {
        await page.goto(URL_BASE + '/');
        await page.locator('#session-role').waitFor();
        const role = (await page.locator('#session-role').innerText()).trim().toLowerCase();
        return role === 'auditor' || 'role "' + role + '"';
      }, true);
      auditorPage = page;
      await step('auditor: the users page has no "Create user"', async () => {
        await nav(page, 'Users');
        await page.locator('#user-results table, #user-results .empty').first().waitFor();
        return (await page.getByRole('link', { name: 'Create user' }).count()) === 0;
      });
      await step('auditor: the user detail shows the user without any action button', async () => {
        await go(page, '#/users/' + encodeURIComponent(msisdn));
        await page.locator('#user-state').waitFor();
        await page.getByRole('heading', { level: 2, name: 'Recent transactions' }).waitFor();
        const n1 = await page.locator('#user-actions').count();
        const n2 = await page.locator('#view button').count();
        const n3 = await page.locator('#key-request').count();
        /* The only button left is the jobs list's Refresh. */
        const names = await page.locator('#view button').allInnerTexts();
        return (n1 === 0 && n3 === 0 && names.every((x) => x.trim() === 'Refresh')) ||
          'actions ' + n1 + ', key form ' + n3 + ', buttons ' + n2 + ': ' + names.join(', ');
      });
      await step('auditor: APs readable, no "Create AP", no AP actions', async () => {
        await nav(page, 'APs');
        await page.locator('table.data tbody tr').first().waitFor();
        if (await page.getByRole('link', { name: 'Create AP' }).count()) return 'Create AP shown';
        await page.locator('table.data tbody tr').first().getByRole('link').click();
        await page.locator('#ap-state').waitFor();
        return (await page.locator('#ap-actions').count()) === 0 || 'AP actions shown';
      });
      await step('auditor: approvals readable without Approve/Reject', async () => {
        await nav(page, 'Approvals');
        await page.locator('#view table, #view .empty').first().waitFor();
        return (await page.getByRole('button', { name: /^(Approve|Reject)$/ }).count()) === 0;
      });
      await step('auditor: profiles readable without editing', async () => {
        await nav(page, 'Profiles');
        await page.getByRole('heading', { level: 2, name: 'Registration profiles' }).waitFor();
        await page.locator('#view table, #view .empty').first().waitFor();
        return (await page.getByRole('button', { name: /Edit as JSON|New registration profile/ }).count()) === 0;
      });
      await step('auditor: the audit log is readable and verifies', async () => {
        await nav(page, 'Audit');
        await page.locator('#audit-list tbody tr').first().waitFor();
        await page.getByRole('button', { name: 'Verify chain' }).click();
        return (await page.locator('#verify-result .verify').getAttribute('data-ok')) === 'true';
      });
      await step('no console error, page error or CSP violation in any page', async () => {
        return problems.length === 0 || problems.join('\n');
      });
      await step('auditor: a user.create forced from the page (with the CSRF token) answers 403', async () => {
        const r = await forcedPost(page, '/users', { msisdn: '+358479999999', given_name: 'X' }, true);
        return (r.status === 403 && r.body && r.body.error && r.body.error.status === 403) ||
          'status ' + r.status + ' ' + JSON.stringify(r.body);
      });
      await step('auditor: a suspend forced from the page answers 403', async () => {
        const r = await forcedPost(page, '/users/' + encodeURIComponent(msisdn) + '/suspend', {}, true);
        return r.status === 403 || 'status ' + r.status;
      });
    });

    await phase('csrf', async () => {
      const { ctx, page } = await newPage(browser, 'admin');
      await step('admin: a mutating request without the CSRF token is refused (403)', async () => {
        await page.goto(URL_BASE + '/');
        await page.locator('#session-role').waitFor();
        const r = await forcedPost(page, '/users/' + encodeURIComponent(msisdn) + '/suspend', {}, false);
        if (r.status !== 403) return 'status ' + r.status;
        const d = await directGet('/api/v1/users/' + encodeURIComponent(msisdn), 'admin');
        const u = JSON.parse(d.body);
        const st = (u.user || u).state;
        return st !== 'suspended' && st !== 2 ? true : 'the user was suspended anyway';
      });
      await ctx.close();
    });

    if (auditorPage) {
      await step('the CSP is enforced: an inline style injected into the page is reported', async () => {
        const before = problems.length;
        await auditorPage.evaluate(() => {
          const s = document.createElement('style');
          s.textContent = 'body { background: red; }';
          document.head.appendChild(s);
        });
        await auditorPage.waitForTimeout(500);
        const bg = await auditorPage.evaluate(() => getComputedStyle(document.body).backgroundColor);
        const reported = problems.slice(before).some((p) => /CSP violation|Content Security Policy/i.test(p));
        return (reported && bg !== 'rgb(255, 0, 0)') || 'reported ' + reported + ', background ' + bg;
      });
      await auditorCtx.close();
    }
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  notOk('the browser test ran', e && e.stack ? e.stack : e);
}
console.log('1..' + n);
process.exit(failed ? 1 : 0);
