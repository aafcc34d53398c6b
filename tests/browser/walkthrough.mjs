// walkthrough.mjs -- the web interface in Debian's chromium (headless, driven by
// puppeteer-core, which downloads no browser), against two real servers started by
// tests/integration/95_webui_browser.sh: one open, one with HTTP Basic auth.
// Environment: MP_URL, MP_AUTH_URL, MP_USER, MP_PASS, MP_SHOTS (screenshot folder),
// MP_DATA (pydicom's test files), MP_BULK (how many studies for the list check).
// Prints PASS/FAIL lines and one "N passed, N failed" line; exits non-zero on a failure.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import puppeteer from 'puppeteer-core';

const E = process.env;
const SHOTS = E.MP_SHOTS;
const DATA = E.MP_DATA || '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const FILES = ['CT_small.dcm', 'MR_small.dcm', 'SC_rgb_small_odd.dcm'].map(f => path.join(DATA, f));
const NAMES = ['CompressedSamples, CT1', 'CompressedSamples, MR1', 'Lestrade, G'];
const BULK = Number(E.MP_BULK || 10000);
const HERE = path.dirname(new URL(import.meta.url).pathname);
let passed = 0, failed = 0;
const t0 = Date.now();

function ok(cond, what) {
  if (cond) { passed++; console.log(`PASS: ${what}`); } else { failed++; console.log(`FAIL: ${what}`); }
  return cond;
}
const sleep = ms => new Promise(r => setTimeout(r, ms));

// A page that records console errors (except the feature probes' expected 404/405), page
// errors, and every request to another origin.
async function watchedPage(ctx, base) {
  const page = await ctx.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  const origin = new URL(base).origin;
  page.mp = { errors: [], foreign: [], expectFailures: false };
  page.on('console', async m => {
    if (m.type() !== 'error') return;
    const u = m.location()?.url || '';
    if (/^Failed to load resource/.test(m.text())) {
      if (page.mp.expectFailures) return; // a step that provokes a refusal on purpose
      const probes = await page.evaluate(() => window.mpProbes || []).catch(() => []);
      if (probes.includes(u)) return;
    }
    page.mp.errors.push(`${m.text()} (${u})`);
  });
  page.on('pageerror', e => page.mp.errors.push(`page error: ${e.message}`));
  page.on('request', r => {
    const u = r.url();
    if (!u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== origin) page.mp.foreign.push(u);
  });
  return page;
}

async function shot(page, name, opts = {}) {
  if (!SHOTS) return;
  await sleep(150);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: opts.fullPage ?? false });
}

async function rowsNames(page) {
  return page.$$eval('table.list tbody tr td:first-child', tds => tds.map(td => td.textContent.trim()));
}

// The test's own REST checks, from node (so that their 404s are not the page's console).
async function api(page, p, method = 'GET') {
  const base = new URL('..', page.url()).href;
  const headers = page.mp.user ? { Authorization: 'Basic ' + Buffer.from(`${page.mp.user}:${page.mp.pass}`).toString('base64') } : {};
  const r = await fetch(base + p, { method, headers });
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
}

async function walkthrough(page, base, label, { shots }) {
  const sfx = shots ? '' : '-auth';
  // "/" leads to the interface
  const resp = await page.goto(base + '/', { waitUntil: 'networkidle0' });
  ok(resp.ok() && page.url().endsWith('/app/'), `${label}: / redirects to /app/ (${page.url()})`);
  await page.waitForSelector('main .empty, main table.list');

  // upload three files through the file input
  await page.goto(base + '/app/#/upload');
  const input = await page.waitForSelector('#files');
  await input.uploadFile(...FILES);
  await page.waitForSelector('.summary[data-done="true"]', { timeout: 20000 });
  const sum = await page.$eval('.summary', e => ({ ...e.dataset }));
  ok(sum.stored === '3' && sum.refused === '0', `${label}: upload of 3 files: ${sum.stored} stored, ${sum.already} already, ${sum.refused} refused`);
  ok(await page.$eval('[role=progressbar][aria-label="Overall upload"]', e => e.getAttribute('aria-valuenow')) === '100', `${label}: overall progress bar at 100 %`);
  const perFile = await page.$$eval('.upload-item [role=progressbar]', bs => bs.map(b => b.getAttribute('aria-valuenow')));
  ok(perFile.length === 3 && perFile.every(v => v === '100'), `${label}: three per-file progress bars at 100 %`);
  // the same file again: "already stored"; a file that is not DICOM: refused, with the server's reason
  const junk = path.join(path.dirname(SHOTS || '/tmp'), `not-dicom-${process.pid}.txt`);
  fs.writeFileSync(junk, 'this is not a DICOM file\n'.repeat(20));
  page.mp.expectFailures = true;
  await input.uploadFile(FILES[0], junk);
  await page.waitForFunction(() => document.querySelectorAll('.upload-item[data-result]').length === 5, { timeout: 20000 });
  await sleep(200);
  page.mp.expectFailures = false;
  const sum2 = await page.$eval('.summary', e => ({ ...e.dataset }));
  const refusedText = await page.$eval('.upload-item[data-result="refused"] .status', e => e.textContent);
  ok(sum2.already === '1' && sum2.refused === '1' && /HTTP 400/.test(refusedText), `${label}: summary counts already stored (1) and refused (1: "${refusedText}")`);
  fs.rmSync(junk, { force: true });
  // a ZIP (deflated, with a folder inside): unpacked in the browser, one upload per entry
  const zip = path.join(path.dirname(SHOTS || '/tmp'), `two-${process.pid}.zip`);
  spawnSync('/usr/bin/python3', ['-c', `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], 'a/CT.dcm'); z.write(sys.argv[3], 'a/b/MR.dcm')`, zip, FILES[0], FILES[1]]);
  await input.uploadFile(zip);
  await page.waitForFunction(() => document.querySelectorAll('.upload-item[data-result]').length === 7, { timeout: 20000 });
  const sum3 = await page.$eval('.summary', e => ({ ...e.dataset }));
  const zipRows = await page.$$eval('.upload-item .name', ns => ns.map(n => n.textContent).filter(t => t.includes('.zip ›')));
  ok(sum3.already === '3' && zipRows.length === 2, `${label}: a ZIP is unpacked in the browser, each entry uploaded (${zipRows.join(', ')}: already stored)`);
  fs.rmSync(zip, { force: true });
  if (shots) await shot(page, 'upload');

  // listed with the right patient names
  await page.goto(base + '/app/#/studies');
  await page.waitForSelector('table.list tbody tr');
  const names = await rowsNames(page);
  ok(JSON.stringify([...names].sort()) === JSON.stringify([...NAMES].sort()), `${label}: studies listed with the patient names ${JSON.stringify(names)}`);
  await page.waitForFunction(() => [...document.querySelectorAll('.mods')].every(m => m.textContent.trim()), { timeout: 5000 }).catch(() => {});
  if (shots) await shot(page, 'studies');
  // search: by name, and the sort order of the page
  await page.type('#f-name', 'lestrade');
  await page.click('form.search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('name=lestrade') && document.querySelectorAll('table.list tbody tr').length === 1, { timeout: 5000 });
  ok((await rowsNames(page))[0] === 'Lestrade, G', `${label}: search by patient name finds one study`);
  await page.goto(base + '/app/#/studies?sort=name&dir=desc');
  await page.waitForSelector('table.list tbody tr');
  const desc = await rowsNames(page);
  ok(JSON.stringify(desc) === JSON.stringify([...NAMES].sort().reverse()), `${label}: sorting by patient name, descending`);

  // open a study with the keyboard alone: Tab from the top of the page to its row, Enter
  await page.goto(base + '/app/#/studies?name=CT1');
  await page.waitForSelector('table.list tbody tr');
  await page.evaluate(() => document.activeElement?.blur());
  let tabs = 0;
  for (; tabs < 40; tabs++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(() => document.activeElement?.classList.contains('row-link'))) break;
  }
  const focusRing = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  ok(tabs < 40 && focusRing !== 'none', `${label}: keyboard: the study row is reached in ${tabs + 1} Tabs, with a visible focus ring`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.series .thumbs .thumb');
  const previews = await page.$$('.thumb img');
  if (previews.length) {
    await page.waitForFunction(() => [...document.querySelectorAll('.thumb img')].every(i => i.complete), { timeout: 10000 });
    const widths = await page.$$eval('.thumb img', imgs => imgs.map(i => i.naturalWidth));
    ok(widths.length > 0 && widths.every(w => w > 0), `${label}: thumbnails load (naturalWidth ${widths.join(', ')})`);
  } else {
    console.log(`NOTE: ${label}: no /instances/{id}/preview route on this server: thumbnails shown as placeholders`);
  }
  const studyUrl = page.url();
  if (shots) await shot(page, 'study');

  // anonymize (basic profile) and watch the job's progress bar reach 100 %
  await page.click('.toolbar button.primary');
  await page.waitForSelector('dialog[open] form');
  if (shots) await shot(page, 'anonymize-dialog');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForSelector('.job-card');
  const seen = [];
  await page.waitForFunction(() => {
    const c = document.querySelector('.job-card');
    return c && c.dataset.state;
  }, { timeout: 30000, polling: 50 }).catch(() => {});
  const card = await page.$eval('.job-card', c => ({ state: c.dataset.state, value: c.querySelector('[role=progressbar]').getAttribute('aria-valuenow'), text: c.textContent }));
  seen.push(card.value);
  ok(card.state === 'Success' && card.value === '100', `${label}: anonymization job: ${card.state}, progress bar at ${card.value} %`);
  if (shots) await shot(page, 'study-anonymized');
  await page.click('.job-card a.result');
  await page.waitForFunction(u => location.href !== u && document.querySelector('.series'), { timeout: 10000 }, studyUrl);
  const anonId = page.url().split('#/study/')[1];
  const anonName = await page.$eval('.card dl.kv dd', e => e.textContent);
  ok(anonId && !NAMES.includes(anonName), `${label}: the anonymized study opens (${anonId}, patient "${anonName}")`);
  await page.goto(base + '/app/#/studies');
  await page.waitForSelector('table.list tbody tr');
  ok((await rowsNames(page)).length === 4, `${label}: the anonymized study appears in the list (4 studies)`);

  // download its ZIP, when the server offers archives
  await page.goto(`${base}/app/#/study/${anonId}`);
  await page.waitForSelector('.toolbar');
  await page.waitForFunction(() => document.querySelector('.toolbar a[data-action="zip"], .toolbar button[disabled][title]'), { timeout: 5000 });
  const zipLink = await page.$('.toolbar a[data-action="zip"]');
  if (zipLink && SHOTS) {
    const dir = fs.mkdtempSync(path.join(SHOTS, 'download-'));
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir });
    let file = null;
    if (label === 'auth') {
      // puppeteer answers the Basic challenge for the page's own requests only: the browser's
      // download manager gets the 401 (a person's browser reuses the credentials it cached for
      // the origin). So here the link's target is fetched by the page itself, with the same
      // credentials as every API call, and the bytes are checked the same way.
      const href = await page.$eval('.toolbar a[data-action="zip"]', a => a.href);
      const b64 = await page.evaluate(async h => {
        const r = await fetch(h);
        if (!r.ok) return '';
        const buf = new Uint8Array(await r.arrayBuffer());
        let s = '';
        for (let i = 0; i < buf.length; i += 0x8000) s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
        return btoa(s);
      }, href);
      if (b64) { fs.writeFileSync(path.join(dir, 'study.zip'), Buffer.from(b64, 'base64')); file = 'study.zip'; }
    } else {
      await zipLink.click();
      for (let i = 0; i < 100 && !file; i++) {
        await sleep(100);
        file = fs.readdirSync(dir).find(f => f.endsWith('.zip'));
      }
    }
    const inst = await api(page, `studies/${anonId}/instances`);
    const r = file ? spawnSync('/usr/bin/python3', ['-c', `
import sys, zipfile, io
z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
names = [n for n in z.namelist() if not n.endswith('/')]
dicm = [n for n in names if z.read(n)[128:132] == b'DICM']
print(len(names), len(dicm))`, path.join(dir, file)], { encoding: 'utf8' }) : null;
    const [n, d] = (r?.stdout || '0 0').trim().split(' ').map(Number);
    ok(file && r.status === 0 && n === inst.body.length && d === n, `${label}: ZIP download valid: ${n} entries, ${d} DICOM files, study has ${inst.body.length}`);
  } else {
    console.log(`NOTE: ${label}: no /studies/{id}/archive route on this server: the Download ZIP action is disabled`);
  }

  // delete it, with the confirmation
  await page.click('.toolbar button.danger');
  await page.waitForSelector('dialog[open]');
  if (shots) await shot(page, 'delete-dialog');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForFunction(() => location.hash.startsWith('#/studies'), { timeout: 10000 });
  await page.waitForSelector('table.list tbody tr');
  const gone = await api(page, `studies/${anonId}`);
  ok(gone.status === 404 && (await rowsNames(page)).length === 3, `${label}: the anonymized study is deleted (GET answers ${gone.status}, 3 studies listed)`);

  // an instance: tags, metadata, attachments
  await page.goto(studyUrl);
  await page.waitForSelector('.thumb');
  await page.click('.thumb');
  await page.waitForSelector('ul.tags');
  const inst = await page.evaluate(() => ({
    tags: document.querySelector('ul.tags').textContent,
    meta: document.querySelectorAll('.card dl.kv dt').length,
    atts: document.querySelector('.card table.list tbody')?.textContent || '',
  }));
  ok(inst.tags.includes('PatientName') && inst.tags.includes('CompressedSamples^CT1') && inst.meta > 3 && inst.atts.includes('dicom'),
    `${label}: instance page shows tags, metadata and the dicom attachment`);
  if (shots) await shot(page, 'instance');

  await page.goto(base + '/app/#/jobs');
  await page.waitForSelector('table.jobs tbody tr');
  const jobs = await page.$$eval('table.jobs tbody tr', trs => trs.map(t => t.dataset.state));
  ok(jobs.includes('Success'), `${label}: jobs page lists the anonymization (${jobs.join(', ')})`);
  if (shots) await shot(page, 'jobs');
}

// Stores BULK one-instance studies in the background (bulk_studies.py); resolves to its exit
// status and duration.
function startBulk(base) {
  const t = Date.now();
  const child = spawn('/usr/bin/python3', [path.join(HERE, 'bulk_studies.py'), base, String(BULK)], { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise(res => child.on('exit', code => res({ code, seconds: (Date.now() - t) / 1000 })));
}

async function listWithBulk(page, base, bulk) {
  const stats = await api(page, 'statistics');
  ok(bulk.code === 0 && stats.body.CountStudies >= BULK, `${BULK} studies stored for the list check (${stats.body.CountStudies} in the index, ${bulk.seconds.toFixed(1)} s)`);
  const figures = [];
  for (let i = 0; i < 3; i++) {
    await page.goto('about:blank');
    await page.goto(base + '/app/#/studies', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.mpStudiesRenderedAt, { timeout: 20000 });
    figures.push(await page.evaluate(() => window.mpStudiesRenderedAt));
  }
  const rows = await page.$$eval('table.list tbody tr', r => r.length);
  const range = await page.$eval('.pager .range', e => e.textContent);
  console.log(`FIGURE: first page of ${stats.body.CountStudies} studies rendered ${figures.map(f => f.toFixed(0)).join(' / ')} ms after navigation (performance.now(), 3 loads)`);
  ok(rows === 25, `the first page of the ${stats.body.CountStudies}-study list renders (${rows} rows, "${range}")`);
  await page.click('.pager button:last-of-type');
  await page.waitForFunction(() => location.hash.includes('page=1') && document.querySelector('.pager .range')?.textContent.startsWith('26'), { timeout: 10000 });
  ok(true, 'the next page comes from the server (Since=25)');
  await shot(page, 'studies-10000');
  await page.setViewport({ width: 820, height: 1180 });
  await page.goto(base + '/app/#/studies?page=0');
  await page.waitForSelector('table.list tbody tr');
  await shot(page, 'studies-tablet');
  await page.setViewport({ width: 1280, height: 860 });
}

async function memoryPanel(page, base, label, shots) {
  await page.evaluate(() => { location.hash = '#/system'; }); // in the page: the samples so far stay
  await page.waitForSelector('svg.chart');
  // Under a sanitizer malloc_trim runs but gives nothing back (the sanitizer's allocator owns the
  // heap): there the panel must still plot each trim, with 0 bytes.
  const sanitized = (process.env.MP_SANITIZER || 'none') !== 'none';
  const trim = await page.waitForFunction((sel) => {
    const t = [...document.querySelectorAll(sel)];
    return t.length ? t.map(g => Number(g.dataset.released)) : null;
  }, { timeout: 30000, polling: 500 }, sanitized ? 'svg.chart .trim' : 'svg.chart .trim.gave').then(h => h.jsonValue()).catch(() => null);
  ok(trim && (sanitized ? trim.length > 0 : trim.some(b => b > 0)), `${label}: the memory panel plots trims with the bytes they gave back (${trim ? trim.map(b => `${b} B`).join(', ') : 'none'})`);
  const rss = await page.$eval('.figure.rss .v', e => e.textContent);
  ok(/\d/.test(rss), `${label}: the memory panel shows the resident memory (${rss})`);
  if (shots) await shot(page, 'system', { fullPage: true });
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  userDataDir: fs.mkdtempSync('/tmp/mp-chromium-'),
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  // 1. the open server: the walkthrough; then 10,000 studies stored in the background while
  // the walkthrough runs on the other server; then the list and the memory panel
  const page = await watchedPage(browser.defaultBrowserContext(), E.MP_URL);
  await walkthrough(page, E.MP_URL, 'open', { shots: true });
  const bulk = startBulk(E.MP_URL);

  // 2. the same behind HTTP Basic auth: refused without credentials, the whole walkthrough with them
  if (E.MP_AUTH_URL) {
    const ctx = await browser.createBrowserContext();
    const r401 = await fetch(E.MP_AUTH_URL + '/app/');
    ok(r401.status === 401 && /Basic/.test(r401.headers.get('www-authenticate') || ''), `auth: /app/ without credentials answers ${r401.status} with a Basic challenge`);
    const page2 = await watchedPage(ctx, E.MP_AUTH_URL);
    page2.mp.user = E.MP_USER;
    page2.mp.pass = E.MP_PASS;
    await page2.authenticate({ username: E.MP_USER, password: E.MP_PASS });
    await walkthrough(page2, E.MP_AUTH_URL, 'auth', { shots: false });
    await memoryPanel(page2, E.MP_AUTH_URL, 'auth', false);
    const stored = await page2.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML);
    ok(!stored.includes(E.MP_PASS), 'auth: the password appears nowhere in the page or its storage');
    ok(page2.mp.errors.length === 0, `auth: no console errors${page2.mp.errors.length ? ': ' + page2.mp.errors.join(' | ') : ''}`);
    ok(page2.mp.foreign.length === 0, 'auth: no request to another origin');
  }
  console.log(`walkthroughs done: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const bulkDone = await bulk;
  // the open page sampled the metrics all along: its memory panel shows the bulk upload
  await page.bringToFront();
  await memoryPanel(page, E.MP_URL, 'open', true);
  await listWithBulk(page, E.MP_URL, bulkDone);
  ok(page.mp.errors.length === 0, `open: no console errors${page.mp.errors.length ? ': ' + page.mp.errors.join(' | ') : ''}`);
  ok(page.mp.foreign.length === 0, `open: no request to another origin${page.mp.foreign.length ? ': ' + page.mp.foreign.join(' ') : ''}`);
} catch (e) {
  ok(false, `walkthrough stopped: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(`browser tests: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
