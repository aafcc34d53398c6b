// ohif.mjs -- the OHIF Viewer served at /ohif/ in Debian's chromium (headless, driven by
// puppeteer-core, which downloads no browser), against the real server started by
// tests/integration/94_ohif_browser.sh, once open and once behind HTTP Basic auth.
// For each: the study list shows the uploaded CT study; clicking it and its "Basic Viewer"
// button opens the viewer, whose viewport canvas must show the image (pixels not all one
// value); also /ohif/viewer?StudyInstanceUIDs=... opened directly. Screenshots go to MP_SHOTS.
// Environment: MP_URL, MP_AUTH_URL (optional), MP_USER, MP_PASS, MP_SHOTS, MP_STUDY_UID,
// MP_STUDY_ID (its Orthanc ID: the web interface's study page), MP_PATIENT_ID (the MRN column's text), MP_BUDGET_S (seconds per server, default 90).
// Prints PASS/FAIL lines and one "N passed, N failed" line; exits non-zero on a failure.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const E = process.env;
const BUDGET_MS = Number(E.MP_BUDGET_S || 90) * 1000;
let passed = 0, failed = 0;

function ok(cond, what) {
  if (cond) { passed++; console.log(`PASS: ${what}`); } else { failed++; console.log(`FAIL: ${what}`); }
  return cond;
}
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function shot(page, name) {
  if (E.MP_SHOTS) await page.screenshot({ path: path.join(E.MP_SHOTS, `${name}.png`) });
}

// Distinct values among sampled pixels of the largest visible canvas (the viewport), copied
// through a 2D canvas (the viewport may be WebGL); 0 when no canvas has been drawn yet.
function canvasVariety() {
  let best = null;
  for (const c of document.querySelectorAll('canvas')) {
    const r = c.getBoundingClientRect();
    if (c.width < 64 || c.height < 64 || r.width < 64 || r.height < 64) continue;
    if (!best || c.width * c.height > best.width * best.height) best = c;
  }
  if (!best) return 0;
  const t = document.createElement('canvas');
  t.width = best.width; t.height = best.height;
  const g = t.getContext('2d');
  g.drawImage(best, 0, 0);
  const d = g.getImageData(0, 0, t.width, t.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4 * 31) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
  return seen.size;
}

async function waitImage(page, timeout) {
  return page.waitForFunction(`(${canvasVariety.toString()})() > 16 ? (${canvasVariety.toString()})() : false`,
    { timeout, polling: 500 }).then(h => h.jsonValue()).catch(() => 0);
}

async function run(browser, base, label, creds) {
  const t0 = Date.now();
  const left = () => Math.max(1000, BUDGET_MS - (Date.now() - t0));
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  if (creds) await page.authenticate(creds);
  const origin = new URL(base).origin;
  const foreign = [], failedReq = [], errors = [];
  page.on('request', r => {
    const u = r.url();
    if (!/^(data|blob):/.test(u) && new URL(u).origin !== origin) foreign.push(u);
  });
  page.on('response', r => { if (r.status() >= 400) failedReq.push(`${r.status()} ${r.url()}`); });
  page.on('pageerror', e => errors.push(e.message));

  // 1. the study list
  const resp = await page.goto(base + '/ohif/', { waitUntil: 'domcontentloaded' });
  ok(resp && resp.status() === 200, `${label}: /ohif/ answers ${resp && resp.status()}`);
  const listed = await page.waitForFunction(id => document.body.innerText.includes(id),
    { timeout: left(), polling: 250 }, E.MP_PATIENT_ID).then(() => true).catch(() => false);
  ok(listed, `${label}: the study list shows the CT study (patient ID ${E.MP_PATIENT_ID}) after ${Date.now() - t0} ms`);
  await shot(page, `ohif-list-${label}`);

  // 2. open it from the list: the row expands, its "Basic Viewer" button opens the viewer
  let opened = false;
  if (listed) {
    const row = await page.waitForSelector(`xpath///tr[.//*[text()="${E.MP_PATIENT_ID}"]]`, { timeout: left() }).catch(() => null);
    if (row) {
      await row.click();
      const btn = await page.waitForSelector('xpath///button[contains(., "Basic Viewer")]', { timeout: left() }).catch(() => null);
      if (btn) {
        await Promise.all([page.waitForNavigation({ timeout: left() }).catch(() => null), btn.click()]);
        opened = page.url().includes('/ohif/viewer') && page.url().includes(E.MP_STUDY_UID);
      }
    }
  }
  ok(opened, `${label}: the list opens the study in the viewer (${page.url().replace(origin, '')})`);
  let variety = opened ? await waitImage(page, left()) : 0;
  ok(variety > 16, `${label}: the viewport shows the image (${variety} distinct pixel values) after ${Date.now() - t0} ms`);
  if (opened) { await sleep(500); await shot(page, `ohif-viewer-${label}`); }

  // 3. the web interface's study page links the viewer; the link opens the study
  let href = `${base}/ohif/viewer?StudyInstanceUIDs=${E.MP_STUDY_UID}`;
  if (E.MP_STUDY_ID) {
    await page.goto(`${base}/app/#/study/${E.MP_STUDY_ID}`, { waitUntil: 'domcontentloaded' });
    const link = await page.waitForSelector('xpath///a[contains(., "Open viewer")]', { timeout: left() }).catch(() => null);
    const got = link ? await link.evaluate(a => a.href) : '';
    ok(got === href, `${label}: the web interface's study page links the viewer (${got.replace(origin, '')})`);
    if (got) href = got;
  }
  const r2 = await page.goto(href, { waitUntil: 'domcontentloaded' });
  ok(r2 && r2.status() === 200, `${label}: /ohif/viewer?StudyInstanceUIDs=... answers ${r2 && r2.status()}`);
  variety = await waitImage(page, left());
  ok(variety > 16, `${label}: the study opened by URL shows the image (${variety} distinct pixel values)`);

  const ms = Date.now() - t0;
  ok(ms < BUDGET_MS, `${label}: done in ${ms} ms (budget ${BUDGET_MS} ms)`);
  ok(foreign.length === 0, `${label}: no request to another origin${foreign.length ? ': ' + foreign.slice(0, 3).join(', ') : ''}`);
  const dicomwebFailures = failedReq.filter(s => /\/dicom-web\/|\/wado/.test(s));
  ok(dicomwebFailures.length === 0, `${label}: every DICOMweb request succeeded${dicomwebFailures.length ? ': ' + dicomwebFailures.slice(0, 5).join(', ') : ''}`);
  if (failedReq.length) console.log(`NOTE: ${label}: failed requests: ${failedReq.slice(0, 10).join(', ')}`);
  if (errors.length) console.log(`NOTE: ${label}: page errors: ${errors.slice(0, 5).join(' | ')}`);
  await ctx.close();
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  userDataDir: fs.mkdtempSync('/tmp/mp-chromium-'),
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  await run(browser, E.MP_URL, 'open', null);
  if (E.MP_AUTH_URL) {
    const r401 = await fetch(E.MP_AUTH_URL + '/ohif/');
    ok(r401.status === 401, `auth: /ohif/ without credentials answers ${r401.status}`);
    await run(browser, E.MP_AUTH_URL, 'auth', { username: E.MP_USER, password: E.MP_PASS });
  }
} catch (e) {
  ok(false, `unexpected: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
