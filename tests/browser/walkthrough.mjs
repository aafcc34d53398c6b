// walkthrough.mjs -- the web interface in Debian's chromium (headless, driven by
// puppeteer-core, which downloads no browser), against two real servers started by
// tests/integration/95_webui_browser.sh: one open, one with HTTP Basic auth.
// Environment: MP_URL, MP_AUTH_URL, MP_USER, MP_PASS, MP_SHOTS (screenshot folder),
// MP_DATA (pydicom's test files); MP_PART=list (95_webui_list.sh): only the list of MP_BULK
// studies on MP_URL, stored there beforehand.
// Prints PASS/FAIL lines and one "N passed, N failed" line; exits non-zero on a failure.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
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

// page.goto for a route of the app already open (#/a -> #/b): the navigation ends before the
// app's hashchange handler has replaced the old page, so a selector the old page also has (a
// toolbar, a .series, the kv lists) could be read from it. Mark the old page's elements first
// and wait until the router has put something new in <main>. A full load or the same URL go
// straight through.
async function go(page, url, opts) {
  const cur = page.url();
  const sameDoc = cur !== url && cur.split('#')[0] === url.split('#')[0];
  if (sameDoc) await page.evaluate(() => { for (const c of document.getElementById('main')?.children || []) c.dataset.mpOld = ''; });
  const resp = await page.goto(url, opts);
  if (sameDoc) {
    await page.waitForFunction(() => [...(document.getElementById('main')?.children || [])].some(c => !('mpOld' in c.dataset)),
      { timeout: 10000, polling: 'mutation' });
  }
  return resp;
}

// A page that records console errors (except the feature probes' expected 404/405), page
// errors, and every request to another origin.
let lastPage = null; // the page a failure is reported for
async function watchedPage(ctx, base) {
  const page = await ctx.newPage();
  lastPage = page;
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
async function api(page, p, method = 'GET', body = undefined) {
  const base = new URL('..', page.url()).href;
  const headers = page.mp.user ? { Authorization: 'Basic ' + Buffer.from(`${page.mp.user}:${page.mp.pass}`).toString('base64') } : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: r.headers.get('content-type')?.includes('json') ? await r.json() : null };
}

// Every form control has a label (or an ARIA name), every button and link a name, every image
// an alt: on the page as it is now (dialogs included).
async function named(page, where) {
  const bad = await page.evaluate(() => {
    const out = [];
    const byId = id => document.getElementById(id)?.textContent || '';
    const name = el => [...(el.labels || [])].map(l => l.textContent).join(' ').trim() || el.getAttribute('aria-label') ||
      (el.getAttribute('aria-labelledby') || '').split(' ').map(byId).join(' ').trim() || el.getAttribute('title') || '';
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) if (!name(el)) out.push(el.outerHTML.slice(0, 90));
    for (const el of document.querySelectorAll('button, a[href]')) if (!(el.textContent.trim() || name(el))) out.push(el.outerHTML.slice(0, 90));
    for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) out.push(el.outerHTML.slice(0, 90));
    return out;
  });
  ok(!bad.length, `${where}: every control labelled, every button and link named, every image with an alt${bad.length ? ': ' + bad.join(' | ') : ''}`);
}

// WCAG AA contrast of every piece of text on the page as it is now: the text's colour against
// the background it sits on (the first opaque background up its ancestors, the translucent ones
// composited over it) at least 4.5:1, 3:1 for large text (24 px, or 18.66 px bold). Disabled
// controls are exempt (WCAG 1.4.3), so is text over a background image (none here).
async function contrast(page, where) {
  const r = await page.evaluate(() => {
    const parse = c => {
      const m = /rgba?\(([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:[ ,/]+([\d.]+%?))?\)/.exec(c || '');
      if (!m) return null;
      let a = m[4] === undefined ? 1 : parseFloat(m[4]) / (m[4].endsWith('%') ? 100 : 1);
      return [+m[1], +m[2], +m[3], a];
    };
    const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
    const lum = c => {
      const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const backgroundOf = el => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const cs = getComputedStyle(e);
        if (cs.backgroundImage && cs.backgroundImage !== 'none') return null;
        const b = parse(cs.backgroundColor);
        if (b && b[3] > 0) { layers.push(b); if (b[3] >= 1) break; }
      }
      let bg = [255, 255, 255, 1];
      for (const l of layers.reverse()) bg = over(l, bg);
      return bg;
    };
    const out = { checked: 0, worst: null, bad: [] };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || !el || seen.has(el)) continue;
      seen.add(el);
      if (el.closest('[hidden], .sr-only, noscript, script, style, option') || el.closest(':disabled, fieldset:disabled')) continue;
      if (el.closest('dialog:not([open])')) continue;
      const rect = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      if (!rect.width || !rect.height || cs.visibility === 'hidden' || cs.display === 'none') continue;
      const fgRaw = parse(el instanceof SVGElement ? cs.fill : cs.color);
      const bg = backgroundOf(el instanceof SVGElement ? el.ownerSVGElement || el : el);
      if (!fgRaw || !bg) continue;
      const fg = over(fgRaw, bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
      const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
      out.checked++;
      const what = `"${n.textContent.trim().slice(0, 24)}" ${ratio.toFixed(2)}:1 (${cs.color} on rgb(${bg.slice(0, 3).map(Math.round).join(',')}))`;
      if (!out.worst || ratio < out.worst.ratio) out.worst = { ratio, what };
      if (ratio < need) out.bad.push(what);
    }
    return out;
  });
  ok(r.checked > 0 && !r.bad.length, `${where}: text contrast at least 4.5:1 (3:1 large) for ${r.checked} text elements (lowest ${r.worst?.what})${r.bad.length ? ': too low: ' + r.bad.slice(0, 8).join(' | ') : ''}`);
}

async function walkthrough(page, base, label, { shots }) {
  const sfx = shots ? '' : '-auth';
  // "/" leads to the interface
  const resp = await page.goto(base + '/', { waitUntil: 'networkidle0' });
  ok(resp.ok() && page.url().endsWith('/app/'), `${label}: / redirects to /app/ (${page.url()})`);
  await page.waitForSelector('main .empty, main table.list');

  // upload three files through the file input
  await go(page, base + '/app/#/upload');
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
  if (shots) await named(page, `${label}: upload page`);
  if (shots) await contrast(page, `${label}: upload page`);

  // listed with the right patient names
  await go(page, base + '/app/#/studies');
  await page.waitForSelector('table.list tbody tr');
  const names = await rowsNames(page);
  ok(JSON.stringify([...names].sort()) === JSON.stringify([...NAMES].sort()), `${label}: studies listed with the patient names ${JSON.stringify(names)}`);
  await page.waitForFunction(() => [...document.querySelectorAll('.mods')].every(m => m.textContent.trim()), { timeout: 5000 }).catch(() => {});
  if (shots) await shot(page, 'studies');
  if (shots) await contrast(page, `${label}: studies list`);
  // search: by name, and the sort order of the page
  await page.type('#f-name', 'lestrade');
  await page.click('form.search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('name=lestrade') && document.querySelectorAll('table.list tbody tr').length === 1, { timeout: 5000 });
  ok((await rowsNames(page))[0] === 'Lestrade, G', `${label}: search by patient name finds one study`);
  await go(page, base + '/app/#/studies?sort=name&dir=desc');
  await page.waitForSelector('table.list tbody tr');
  const desc = await rowsNames(page);
  ok(JSON.stringify(desc) === JSON.stringify([...NAMES].sort().reverse()), `${label}: sorting by patient name, descending`);
  // search by modality (the form's list) and by a study date range
  const listed = async () => page.evaluate(() => [...document.querySelectorAll('table.list tbody tr td:first-child')].map(td => td.textContent.trim()));
  // (a hash change re-renders the page: the form of the page before is marked, so as not to
  // pick its list while it is being replaced)
  await page.$$eval('main > *', els => els.forEach(e => { e.dataset.stale = '1'; }));
  await go(page, base + '/app/#/studies');
  await page.waitForSelector('main > form.search:not([data-stale]) #f-mod');
  await page.select('#f-mod', 'MR');
  await page.click('form.search button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('mod=MR') && !document.querySelector('.results[aria-busy]') &&
    document.querySelectorAll('table.list tbody tr').length === 1, { timeout: 10000 });
  const byMod = await listed();
  await go(page, base + '/app/#/studies?from=2004-01-01&to=2004-12-31');
  await page.waitForFunction(() => location.hash.includes('from=') && !document.querySelector('.results[aria-busy]') &&
    document.querySelectorAll('table.list tbody tr').length === 2, { timeout: 10000 });
  const byDate = (await listed()).sort();
  const dateField = await page.$eval('#f-from', e => e.value);
  ok(byMod.join() === 'CompressedSamples, MR1' && byDate.join('|') === 'CompressedSamples, CT1|CompressedSamples, MR1' && dateField === '2004-01-01',
    `${label}: search by modality MR (${byMod.join()}) and by study dates 2004 (${byDate.join(', ')})`);
  // the patients list; a patient's row opens that patient's studies
  await go(page, base + '/app/#/patients');
  await page.waitForFunction(() => location.hash.startsWith('#/patients') && document.querySelectorAll('table.list tbody tr').length === 3, { timeout: 10000 });
  const pats = (await listed()).sort();
  await page.$$eval('table.list a.row-link', as => as.find(a => a.textContent === 'Lestrade, G').click());
  await page.waitForFunction(() => location.hash.includes('pid=ID1') && document.querySelectorAll('table.list tbody tr').length === 1, { timeout: 10000 });
  ok(JSON.stringify(pats) === JSON.stringify([...NAMES].sort()) && (await listed()).join() === 'Lestrade, G',
    `${label}: the patients list (${pats.join(', ')}); a patient opens their studies`);
  if (shots) await named(page, `${label}: studies page`);
  if (shots) await contrast(page, `${label}: patient's studies`);

  // open a study with the keyboard alone: Tab from the top of the page to its row, Enter
  await go(page, base + '/app/#/studies?name=CT1');
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
  if (shots) await named(page, `${label}: study page`);
  if (shots) await contrast(page, `${label}: study page`);

  // anonymize (basic profile) and watch the job's progress bar reach 100 %
  await page.click('.toolbar button.primary');
  await page.waitForSelector('dialog[open] form');
  if (shots) await shot(page, 'anonymize-dialog');
  if (shots) await named(page, `${label}: anonymize dialog`);
  if (shots) await contrast(page, `${label}: anonymize dialog`);
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
  // The new URL alone does not mean the new page: the old study's page stays in the document
  // until the hashchange handler replaces it (once it did, and the next lookup met the "Loading"
  // placeholder). So wait for the page that shows another Study UID, with its series.
  const studyUid = await page.$eval('.card code', e => e.textContent);
  await page.click('.job-card a.result');
  await page.waitForFunction((u, uid) => {
    const code = document.querySelector('.card code');
    return location.href !== u && code && code.textContent && code.textContent !== uid && document.querySelector('.series');
  }, { timeout: 10000 }, studyUrl, studyUid);
  const anonId = page.url().split('#/study/')[1];
  const anonName = await page.$eval('.card dl.kv dd', e => e.textContent);
  ok(anonId && !NAMES.includes(anonName), `${label}: the anonymized study opens (${anonId}, patient "${anonName}")`);
  await go(page, base + '/app/#/studies');
  await page.waitForSelector('table.list tbody tr');
  ok((await rowsNames(page)).length === 4, `${label}: the anonymized study appears in the list (4 studies)`);

  // download its ZIP, when the server offers archives
  await go(page, `${base}/app/#/study/${anonId}`);
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
  await go(page, studyUrl);
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
  if (shots) await named(page, `${label}: instance page`);
  if (shots) await contrast(page, `${label}: instance page`);

  await go(page, base + '/app/#/jobs');
  await page.waitForSelector('table.jobs tbody tr');
  const jobs = await page.$$eval('table.jobs tbody tr', trs => trs.map(t => t.dataset.state));
  ok(jobs.includes('Success'), `${label}: jobs page lists the anonymization (${jobs.join(', ')})`);
  if (shots) await shot(page, 'jobs');
  if (shots) await named(page, `${label}: jobs page`);
  if (shots) await contrast(page, `${label}: jobs page`);
}

// Search by accession number and by patient ID (the form's fields, partial values), and a job's
// progress bar between 0 and 100 %: an anonymization of a study of 80 instances
// (big_study.py, copies of MR_small.dcm). The test follows the job on the REST API and, once it
// runs with 0 < Progress < 100, pauses it until the page's card shows that state (the card
// polls every 250 ms: on a fast machine the job could end between two polls), then resumes it.
// Every value the card's progress bar takes is recorded by a MutationObserver.
async function searchAndProgress(page, base, label) {
  const gen = spawnSync('/usr/bin/python3', [path.join(HERE, 'big_study.py'), base, '80', path.join(DATA, 'MR_small.dcm')], { encoding: 'utf8' });
  if (!ok(gen.status === 0, `${label}: a study of 80 instances stored (${(gen.stderr || '').trim().slice(0, 200)})`)) return;
  const cell = (col) => page.$$eval(`table.list tbody td[data-label="${col}"]`, tds => tds.map(td => td.textContent.trim()));
  // A search submitted in the page changes the hash; the list of the page before stays until
  // the router replaces it (not busy, with rows: a wait on the hash alone read it once in CI).
  // So the page is marked before, and the wait is for results the router put there since.
  const markStale = () => page.$$eval('main > *', els => els.forEach(e => { e.dataset.stale = '1'; }));
  const freshResults = k => page.waitForFunction(k => location.hash.includes(k) &&
    document.querySelector('main > .results:not([data-stale]):not([aria-busy]) :is(table.list tbody tr, .empty)'), { timeout: 10000 }, k);
  // Typing into the search form while the list still loads: when the page has loaded, the router
  // must not move the focus away (it did: the rest of the keystrokes were lost; CI met it when
  // the answer came mid-typing). The page's requests are held 600 ms to make that certain.
  await page.evaluate(() => {
    window.mpFetch = window.fetch;
    window.fetch = (...a) => new Promise(r => setTimeout(r, 600)).then(() => window.mpFetch(...a));
  });
  await go(page, base + '/app/#/studies');
  await page.type('#f-name', 'Lest');
  await page.waitForFunction(() => !document.querySelector('.results[aria-busy]'), { timeout: 10000 });
  await page.keyboard.type('rade');
  const kept = await page.evaluate(() => { window.fetch = window.mpFetch; return [document.activeElement?.id, document.getElementById('f-name')?.value]; });
  await markStale();
  await page.keyboard.press('Enter');
  await freshResults('name=Lestrade');
  const found = await rowsNames(page);
  ok(kept[0] === 'f-name' && kept[1] === 'Lestrade' && found.join() === 'Lestrade, G',
    `${label}: typing in the search form while the list loads: the focus stays there (${kept[0] || 'none'}: "${kept[1]}"), Enter finds ${found.join(', ') || 'nothing'}`);
  const search = async (field, value, hashKey) => {
    await page.$$eval('main > *', els => els.forEach(e => { e.dataset.stale = '1'; }));
    await go(page, base + '/app/#/studies');
    await page.waitForSelector(`main > form.search:not([data-stale]) ${field}`);
    await page.type(field, value);
    await markStale();
    await page.click('form.search button[type=submit]');
    await freshResults(hashKey);
  };
  await search('#f-acc', '2026-00', 'acc=2026-00');
  const byAcc = await cell('Accession');
  await search('#f-pid', 'CT1', 'pid=CT1');
  const byPid = await cell('Patient ID');
  ok(byAcc.join() === 'ACC2026-0042' && byPid.join() === '1CT1',
    `${label}: search by accession number "2026-00" (${byAcc.join(', ') || 'nothing'}) and by patient ID "CT1" (${byPid.join(', ') || 'nothing'})`);

  await search('#f-pid', 'PRG-0042', 'pid=PRG-0042');
  await page.click('table.list a.row-link');
  await page.waitForSelector('.toolbar button.primary');
  await page.waitForFunction(() => [...document.querySelectorAll('.thumb img')].every(i => i.complete), { timeout: 20000 });
  const studyId = page.url().split('#/study/')[1];
  const studyUrl = page.url();
  // The job must be caught between 0 and 100 % by the REST polling below; on a quiet machine
  // the 80 instances can all go through between two polls. Then (the job done, nothing seen
  // in between) its result is deleted and the anonymization asked again, at most 3 times.
  let seen = [], state = null, paused = null, anon = null, attempt = 0;
  for (attempt = 1; attempt <= 3; attempt++) {
    if (attempt > 1) {
      await go(page, base + '/app/#/jobs');
      await page.waitForSelector('table.jobs');
      await go(page, studyUrl);
      await page.waitForSelector('.toolbar button.primary');
    }
    await page.click('.toolbar button.primary');
    await page.waitForSelector('dialog[open] form');
    await page.click('dialog[open] button[type=submit]');
    await page.waitForSelector('.job-card');
    const job = await page.$eval('.job-card', c => {
      window.mpBarSeen = [];
      const bar = c.querySelector('[role=progressbar]');
      new MutationObserver(() => window.mpBarSeen.push(Number(bar.getAttribute('aria-valuenow')))).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
      return c.dataset.job;
    });
    paused = null;
    for (const end = Date.now() + 30000; Date.now() < end;) {
      const j = (await api(page, `jobs/${job}`)).body;
      if (j.State === 'Running' && j.Progress > 0 && j.Progress < 100) {
        await api(page, `jobs/${job}/pause`, 'POST', {});
        paused = j.Progress;
        break;
      }
      if (j.State === 'Success' || j.State === 'Failure') break;
    }
    if (paused !== null) {
      await page.waitForSelector('.job-card .state.s-Paused', { timeout: 10000 }).catch(() => {});
      await api(page, `jobs/${job}/resume`, 'POST', {});
    }
    await page.waitForSelector('.job-card[data-state]', { timeout: 60000 });
    seen = await page.evaluate(() => window.mpBarSeen);
    state = await page.$eval('.job-card', c => c.dataset.state);
    anon = await page.$eval('.job-card a.result', a => a.getAttribute('href').split('#/study/')[1]).catch(() => null);
    if (paused !== null || state !== 'Success' || attempt === 3) break;
    if (anon) await api(page, `studies/${anon}`, 'DELETE');
  }
  const between = seen.filter(v => v > 0 && v < 100);
  ok(state === 'Success' && between.length > 0 && seen.at(-1) === 100 && seen.every((v, i) => !i || v >= seen[i - 1]),
    `${label}: the anonymization's progress bar went through ${seen.join(' → ')} % (${between.length} values between 0 and 100${paused !== null ? `; the job was held at ${paused} % until the page showed it` : ''}; attempt ${attempt})`);
  await go(page, base + '/app/#/jobs');
  await page.waitForSelector('table.jobs');
  for (const id of [studyId, anon].filter(Boolean)) await api(page, `studies/${id}`, 'DELETE');
}

// Polls a job through the REST API until cond(job) holds.
async function jobUntil(page, id, cond, what, ms = 20000) {
  let job = null;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    job = (await api(page, `jobs/${id}`)).body;
    if (job && cond(job)) return job;
  }
  throw new Error(`job ${id} never ${what} (last state ${job?.State})`);
}

// First instance's simplified tags of a study.
async function studyTags(page, id) {
  const inst = (await api(page, `studies/${id}/instances`)).body;
  return (await api(page, `instances/${inst[0].ID}/simplified-tags`)).body;
}

// The actions beyond the walkthrough, on the server with one job at a time, "sink" (a real
// storescp started by 95_webui_browser.sh, files in MP_SINK_DIR) and "hole" (this process
// listens on MP_HOLE_PORT, accepts the association's TCP connection and never answers: a send
// there holds the only job worker until the test lets go, so that jobs queued behind it stay
// Pending for as long as the test needs).
async function actions(page, base, label) {
  const all = (await api(page, 'studies?expand')).body;
  const byName = n => all.find(s => s.PatientMainDicomTags?.PatientName === n)?.ID;
  const ct = byName('CompressedSamples^CT1'), mr = byName('CompressedSamples^MR1');
  if (!ok(ct && mr, `${label}: actions: the CT and MR studies are there`)) return;

  // 1. drag and drop: a folder (with a subfolder and a file that is not DICOM), a ZIP and a
  // loose file, dropped on the page through the browser's own drag-and-drop (CDP
  // Input.dispatchDragEvent with real paths: the page walks the folder with webkitGetAsEntry)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-drop-'));
  const folder = path.join(tmp, 'dropped');
  fs.mkdirSync(path.join(folder, 'sub'), { recursive: true });
  fs.copyFileSync(path.join(DATA, 'rtplan.dcm'), path.join(folder, 'rtplan.dcm'));
  fs.copyFileSync(path.join(DATA, 'rtstruct.dcm'), path.join(folder, 'sub', 'rtstruct.dcm'));
  fs.writeFileSync(path.join(folder, 'sub', 'notes.txt'), 'not a DICOM file\n'.repeat(30));
  const zip = path.join(tmp, 'more.zip');
  spawnSync('/usr/bin/python3', ['-c', `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], 'x/rtdose.dcm'); z.write(sys.argv[3], 'CT.dcm')`, zip, path.join(DATA, 'rtdose.dcm'), FILES[0]]);
  const before = (await api(page, 'statistics')).body.CountInstances;
  await go(page, base + '/app/#/upload');
  await page.waitForSelector('#drop');
  await page.$$eval('section.card button', bs => bs.find(b => b.textContent === 'Clear finished')?.click());
  await page.waitForFunction(() => !document.querySelector('.upload-item'));
  const at = await page.$eval('#drop', e => { const r = e.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; });
  const cdp = await page.createCDPSession();
  const data = { items: [], files: [folder, zip, FILES[2]], dragOperationsMask: 1 };
  page.mp.expectFailures = true; // notes.txt is refused (HTTP 400) on purpose
  for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, x: at.x, y: at.y, data });
  await page.waitForFunction(() => document.querySelectorAll('.upload-item').length === 6 &&
    document.querySelectorAll('.upload-item[data-result]').length === 6, { timeout: 20000 });
  await sleep(200);
  page.mp.expectFailures = false;
  const rows = await page.$$eval('.upload-item', lis => Object.fromEntries(lis.map(li => [li.querySelector('.name').textContent,
    { result: li.dataset.result, status: li.querySelector('.status').textContent, bar: li.querySelector('[role=progressbar]').getAttribute('aria-valuenow') }])));
  const want = { 'dropped/rtplan.dcm': 'stored', 'dropped/sub/rtstruct.dcm': 'stored', 'dropped/sub/notes.txt': 'refused',
    'more.zip › x/rtdose.dcm': 'stored', 'more.zip › CT.dcm': 'already', 'SC_rgb_small_odd.dcm': 'already' };
  ok(Object.entries(want).every(([n, r]) => rows[n]?.result === r && rows[n].bar === '100'),
    `${label}: drop of a folder, a ZIP and a file: each file listed with its own bar at 100 % and result (${Object.entries(rows).map(([n, r]) => `${n}: ${r.result}`).join('; ')})`);
  ok(/HTTP 400/.test(rows['dropped/sub/notes.txt']?.status || ''), `${label}: drop: the refused file shows the server's reason ("${rows['dropped/sub/notes.txt']?.status}")`);
  const sum = await page.$eval('.summary', e => ({ ...e.dataset, text: e.textContent }));
  const after = (await api(page, 'statistics')).body.CountInstances;
  ok(sum.stored === '3' && sum.already === '2' && sum.refused === '1' && /3 stored.*2 already stored.*1 refused/.test(sum.text) && after - before === 3,
    `${label}: drop summary "${sum.text}", the server holds ${after - before} more instances`);
  fs.rmSync(tmp, { recursive: true, force: true });
  await shot(page, 'upload-drop');

  // 2. a send held by "hole" keeps the only worker busy
  const held = [];
  const hole = net.createServer(s => { held.push(s); s.on('error', () => {}); });
  await new Promise((res, rej) => { hole.on('error', rej); hole.listen(Number(E.MP_HOLE_PORT), '127.0.0.1', res); });
  const release = () => { for (const s of held.splice(0)) s.destroy(); };
  try {
    const H = (await api(page, 'modalities/hole/store', 'POST', { Resources: [ct], Asynchronous: true })).body.ID;
    await jobUntil(page, H, j => j.State === 'Running', 'ran');
    for (let i = 0; i < 100 && !held.length; i++) await sleep(50);

    // 3. Send to "sink" from the study page: the job waits behind H
    await go(page, `${base}/app/#/study/${ct}`);
    const send = await page.waitForFunction(() => [...document.querySelectorAll('.toolbar button')].find(b => b.textContent === 'Send…' && !b.disabled), { timeout: 10000 });
    await send.click();
    await page.waitForSelector('dialog[open] #d-mod');
    const choices = await page.$$eval('#d-mod option', os => os.map(o => o.value));
    await page.select('#d-mod', 'sink');
    await shot(page, 'send-dialog');
    await page.click('dialog[open] button[type=submit]');
    await page.waitForSelector('.job-card .state.s-Pending', { timeout: 10000 });
    const S = await page.$eval('.job-card', c => c.dataset.job);
    ok(choices.includes('sink') && choices.includes('hole'), `${label}: Send lists the configured modalities (${choices.join(', ')}); the send is queued (job ${S.slice(0, 8)} Pending)`);

    // 4. the jobs page's buttons on those real jobs. Live refresh off while clicking (a button
    // replaced by the refresh between mouse down and up would lose the click); each action
    // refreshes the table itself.
    await go(page, base + '/app/#/jobs');
    await page.waitForSelector(`tr[data-job="${S}"]`);
    await page.click('#jobs-live');
    const press = async (id, action, want) => {
      const sel = `tr[data-job="${id}"] button[aria-label^="${action} "]`;
      // with the live refresh on, the row can be replaced between finding the button and
      // clicking it: puppeteer then refuses before any mouse event, so trying again is safe
      for (let i = 0; ; i++) {
        await page.waitForSelector(sel, { timeout: 10000 });
        try { await page.click(sel); break; } catch (e) { if (i >= 4 || !/detached/i.test(String(e))) throw e; }
      }
      const states = [].concat(want).map(w => `tr[data-job="${id}"][data-state="${w}"]`).join(', ');
      await page.waitForSelector(states, { timeout: 15000 });
      return (await api(page, `jobs/${id}`)).body.State;
    };
    const seq = [];
    seq.push(await press(S, 'pause', 'Paused'));
    seq.push(await press(S, 'resume', 'Pending'));
    seq.push(await press(S, 'cancel', 'Failure'));
    const canceled = await page.$eval(`tr[data-job="${S}"]`, t => t.textContent);
    seq.push(await press(S, 'resubmit', 'Pending'));
    ok(seq.join() === 'Paused,Pending,Failure,Pending', `${label}: jobs page: Pause, Resume, Cancel, Resubmit on the queued send, the server agrees each time (${seq.join(' → ')}; canceled row: "${canceled.slice(0, 80)}")`);
    await shot(page, 'jobs-actions');
    // cancel the running send: it ends when its step returns (the hole lets go)
    const sel = `tr[data-job="${H}"] button[aria-label^="cancel "]`;
    await page.waitForSelector(sel);
    await page.click(sel);
    await sleep(300);
    release();
    await page.click('#jobs-live'); // live again: the rows change by themselves
    await page.waitForSelector(`tr[data-job="${H}"][data-state="Failure"]`, { timeout: 20000 });
    await page.waitForSelector(`tr[data-job="${S}"][data-state="Success"]`, { timeout: 20000 });
    const hj = (await api(page, `jobs/${H}`)).body;
    ok(hj.State === 'Failure' && /cancel/i.test(`${hj.ErrorDescription} ${hj.ErrorDetails}`),
      `${label}: jobs page: Cancel on the running send ends it (${hj.State}: ${hj.ErrorDescription}); the resubmitted send then succeeds, shown live`);
    const uid = (await studyTags(page, ct)).SOPInstanceUID;
    let got = [];
    for (let i = 0; i < 50 && !got.length; i++, await sleep(100)) got = fs.readdirSync(E.MP_SINK_DIR).filter(f => f.endsWith(uid));
    const dump = got.length ? spawnSync('dcmdump', ['+P', '0008,0018', '+P', '0010,0010', path.join(E.MP_SINK_DIR, got[0])], { encoding: 'utf8' }).stdout : '';
    ok(got.length === 1 && dump.includes(uid) && dump.includes('CompressedSamples^CT1'),
      `${label}: Send: the instance arrived at the storescp (${got[0]}: ${dump.trim().replace(/\s+/g, ' ').slice(0, 120)})`);

    // 5. Modify: the dialog (an empty form is refused in place), the job's card follows it live
    // from Pending (behind H, resubmitted from the jobs page) to 100 %, the result opens
    const again = await press(H, 'resubmit', ['Pending', 'Running']); // the worker is free: it may start at once
    ok(['Pending', 'Running'].includes(again), `${label}: jobs page: Resubmit of the canceled send (now ${again})`);
    await jobUntil(page, H, j => j.State === 'Running', 'ran again');
    for (let i = 0; i < 100 && !held.length; i++) await sleep(50);
    await go(page, `${base}/app/#/study/${mr}`);
    await page.waitForSelector('.toolbar');
    await page.$$eval('.toolbar button', bs => bs.find(b => b.textContent === 'Modify…').click());
    await page.waitForSelector('dialog[open] #d-replace');
    await page.click('dialog[open] button[type=submit]');
    const formErr = await page.$eval('dialog[open] p.err', e => e.textContent).catch(() => '');
    ok(/at least one tag/.test(formErr), `${label}: Modify: an empty form is refused in the dialog ("${formErr}")`);
    await page.type('#d-replace', 'StudyDescription=Edited in the browser\nReferringPhysicianName=Doe^Jane');
    await page.type('#d-remove', 'InstitutionName');
    await shot(page, 'modify-dialog');
    await page.click('dialog[open] button[type=submit]');
    await page.waitForSelector('.job-card');
    // every state the card shows, as it shows it
    await page.$eval('.job-card', c => {
      window.mpCardSeen = [];
      const note = () => window.mpCardSeen.push(`${c.querySelector('.state').className.replace('state s-', '')}:${c.querySelector('[role=progressbar]').getAttribute('aria-valuenow')}`);
      new MutationObserver(note).observe(c, { subtree: true, attributes: true, childList: true, characterData: true });
    });
    await page.waitForSelector('.job-card .state.s-Pending', { timeout: 10000 });
    await sleep(500);
    release();
    await page.waitForSelector('.job-card[data-state]', { timeout: 30000 });
    const card = await page.$eval('.job-card', c => ({ state: c.dataset.state, bar: c.querySelector('[role=progressbar]').getAttribute('aria-valuenow') }));
    const seen = [...new Set(await page.evaluate(() => window.mpCardSeen))];
    ok(card.state === 'Success' && card.bar === '100' && seen.some(s => s.startsWith('Pending:0')) && seen.at(-1) === 'Success:100',
      `${label}: Modify job followed live: ${seen.join(' → ')}`);
    await page.click('.job-card a.result');
    await page.waitForFunction(() => document.querySelector('h1')?.textContent.startsWith('Edited in the browser'), { timeout: 10000 });
    const newId = page.url().split('#/study/')[1];
    const mt = await studyTags(page, newId);
    const shown = await page.$$eval('.card dl.kv dd', dds => dds.map(d => d.textContent).join(' | '));
    ok(newId !== mr && mt.StudyDescription === 'Edited in the browser' && mt.ReferringPhysicianName === 'Doe^Jane' && !('InstitutionName' in mt) &&
      shown.includes('Doe, Jane'), `${label}: the modified study opens, its tags changed (StudyDescription "${mt.StudyDescription}", ReferringPhysicianName "${mt.ReferringPhysicianName}", InstitutionName ${'InstitutionName' in mt ? 'still there' : 'removed'})`);
    await shot(page, 'study-modified');
  } finally {
    release();
    hole.close();
  }

  // 6. DICOMDIR and the viewer: links on the study page to the routes any client uses
  await go(page, `${base}/app/#/study/${ct}`);
  await page.waitForFunction(() => [...document.querySelectorAll('.toolbar a, .toolbar button')].filter(b => /DICOMDIR|Open viewer/.test(b.textContent)).length === 2 &&
    ![...document.querySelectorAll('.toolbar button[disabled]')].some(b => b.title === 'Checking…'), { timeout: 10000 });
  const links = await page.$$eval('.toolbar a', as => Object.fromEntries(as.map(a => [a.textContent, a.href])));
  const auth = { Authorization: 'Basic ' + Buffer.from(`${page.mp.user}:${page.mp.pass}`).toString('base64') };
  if (links.DICOMDIR) {
    const r = await fetch(links.DICOMDIR, { headers: auth });
    const f = path.join(os.tmpdir(), `mp-dicomdir-${process.pid}.zip`);
    fs.writeFileSync(f, Buffer.from(await r.arrayBuffer()));
    const z = spawnSync('/usr/bin/python3', ['-c', `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1]); n = z.namelist()
print(sum(1 for x in n if x.upper().endswith('DICOMDIR')), sum(1 for x in n if not x.endswith('/') and z.read(x)[128:132] == b'DICM'))`, f], { encoding: 'utf8' });
    fs.rmSync(f, { force: true });
    ok(r.status === 200 && z.stdout.trim() === '1 2', `${label}: the DICOMDIR link gives a ZIP with a DICOMDIR and the study's file (${z.stdout.trim() || z.stderr.trim()})`);
  } else console.log(`NOTE: ${label}: no /studies/{id}/media on this server: DICOMDIR disabled`);
  if (links['Open viewer']) {
    const uid = (await studyTags(page, ct)).StudyInstanceUID;
    const v = new URL(links['Open viewer']);
    const r = await fetch(v, { headers: auth });
    ok(v.pathname === '/ohif/viewer' && v.searchParams.get('StudyInstanceUIDs') === uid && r.status === 200 && /html/.test(r.headers.get('content-type')),
      `${label}: Open viewer links to ${v.pathname}${v.search.slice(0, 40)}… (HTTP ${r.status})`);
  } else console.log(`NOTE: ${label}: no /ohif/ on this server (third_party/ohif missing): the viewer action is disabled`);

  // 7. custom anonymization (Keep/Replace/Remove in the form) next to the basic profile
  const basic = (await api(page, `studies/${ct}/anonymize`, 'POST', {})).body.ID;
  await go(page, `${base}/app/#/study/${ct}`);
  await page.waitForSelector('.toolbar button.primary');
  await page.click('.toolbar button.primary');
  await page.waitForSelector('dialog[open] input[value=custom]');
  const lockedBefore = await page.$eval('dialog[open] fieldset.custom', f => f.disabled);
  await page.click('dialog[open] input[value=custom]');
  await page.type('#d-keep', 'StudyDescription');
  await page.type('#d-replace', 'PatientName=Custom^Anonymous\nInstitutionName=Test Site');
  await page.type('#d-remove', 'Manufacturer');
  await shot(page, 'anonymize-custom');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForSelector('.job-card[data-state]', { timeout: 30000 });
  const st = await page.$eval('.job-card', c => c.dataset.state);
  await page.click('.job-card a.result');
  await page.waitForFunction(() => document.querySelector('h1 .muted')?.textContent.includes('Custom, Anonymous'), { timeout: 10000 });
  const custom = page.url().split('#/study/')[1];
  const [ct0, bt, cu] = [await studyTags(page, ct), await studyTags(page, basic), await studyTags(page, custom)];
  const row = t => `PatientName ${t.PatientName}, StudyDescription ${t.StudyDescription ?? '-'}, InstitutionName ${t.InstitutionName ?? '-'}, Manufacturer ${t.Manufacturer ?? '-'}`;
  ok(lockedBefore && st === 'Success' && cu.PatientName === 'Custom^Anonymous' && cu.StudyDescription === ct0.StudyDescription &&
    cu.InstitutionName === 'Test Site' && !('Manufacturer' in cu) && cu.PatientID !== ct0.PatientID && cu.StudyInstanceUID !== ct0.StudyInstanceUID &&
    bt.PatientName !== 'Custom^Anonymous' && !bt.StudyDescription && bt.InstitutionName !== 'Test Site',
  `${label}: custom anonymization from the form: ${row(cu)}; the basic profile on the same study: ${row(bt)}`);
  // away from the study before deleting it (its lazy thumbnails would answer 404 in the console)
  await page.waitForFunction(() => [...document.querySelectorAll('.thumb img')].every(i => i.complete), { timeout: 10000 });
  await go(page, base + '/app/#/jobs');
  await page.waitForSelector('table.jobs');
  for (const id of [basic, custom]) await api(page, `studies/${id}`, 'DELETE');
}

// The list with BULK studies (stored by 95_webui_list.sh before this runs): the first page's
// time (the issue's figure), what the page asks the server for, the browser's cache, paging.
async function listWithBulk(page, base) {
  const stats = { body: await (await fetch(base + '/statistics')).json() };
  ok(stats.body.CountStudies >= BULK, `${BULK} studies in the index for the list check (${stats.body.CountStudies})`);
  const figures = [];
  let asked = [];
  const note = r => asked.push({ url: r.url(), method: r.method(), body: r.postData() || '' });
  const served = [];
  const noteResponse = r => served.push({ url: r.url(), cached: r.fromCache(), status: r.status() });
  for (let i = 0; i < 4; i++) {
    await page.goto('about:blank');
    asked = [];
    served.length = 0;
    page.on('request', note);
    page.on('response', noteResponse);
    await go(page, base + '/app/#/studies', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.mpStudiesRenderedAt, { timeout: 20000 });
    figures.push(await page.evaluate(() => window.mpStudiesRenderedAt));
    await page.waitForSelector('.results[data-modalities="done"]', { timeout: 20000 });
    await sleep(300); // anything else the page would ask for
    page.off('request', note);
    page.off('response', noteResponse);
  }
  const rows = await page.$$eval('table.list tbody tr', r => r.length);
  const range = await page.$eval('.pager .range', e => e.textContent);
  console.log(`FIGURE: first page of ${stats.body.CountStudies} studies rendered ${figures.map(f => f.toFixed(0)).join(' / ')} ms after navigation (performance.now(), 4 loads, the first one cold)`);
  ok(rows === 25, `the first page of the ${stats.body.CountStudies}-study list renders (${rows} rows, "${range}")`);
  // one request for the rows, one for the page's modalities: not one a row
  const api_ = asked.filter(a => a.url.startsWith(base) && !a.url.includes('/app/'));
  const finds = api_.filter(a => a.url.endsWith('/tools/find'));
  const perRow = api_.filter(a => /\/studies\/[^/]+\/series/.test(a.url));
  const seriesFind = finds.find(f => f.body.includes('"Level":"Series"'));
  const uids = seriesFind ? JSON.parse(seriesFind.body).Query.StudyInstanceUID.split('\\').length : 0;
  ok(finds.length === 2 && perRow.length === 0 && uids === 25,
    `the page asks for its rows and their modalities in 2 finds (${finds.length} finds, the series one for ${uids} studies; ${perRow.length} per-row /series requests; all: ${api_.map(a => new URL(a.url).pathname).join(' ')})`);
  const mods = await page.$$eval('table.list tbody .mods', ms => ms.map(m => m.textContent));
  ok(mods.length === 25 && mods.every(m => m === 'OT'), `every row's Modalities cell is filled (${[...new Set(mods)].join(',')})`);
  // a warm load: the page's files come from the browser's cache (versioned, immutable URLs):
  // only the page itself is revalidated
  const files = served.filter(r => r.url.includes('/app/v/'));
  const fromNet = files.filter(r => !r.cached).map(r => r.url.replace(/^.*\/app\//, ''));
  ok(files.length >= 5 && fromNet.length === 0, `warm load: the ${files.length} files under /app/v/ come from the browser's cache${fromNet.length ? ' (not: ' + fromNet.join(' ') + ')' : ''}`);
  await page.click('.pager button:last-of-type');
  await page.waitForFunction(() => location.hash.includes('page=1') && document.querySelector('.pager .range')?.textContent.startsWith('26'), { timeout: 10000 });
  ok(true, 'the next page comes from the server (Since=25)');
  await shot(page, 'studies-10000');
  await page.setViewport({ width: 820, height: 1180 });
  await go(page, base + '/app/#/studies?page=0');
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
  if (shots) await named(page, `${label}: system page`);
  if (shots) await contrast(page, `${label}: system page`);
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  userDataDir: fs.mkdtempSync('/tmp/mp-chromium-'),
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  if (E.MP_PART === 'list') {
    // 95_webui_list.sh: one server holding BULK studies
    const page = await watchedPage(browser.defaultBrowserContext(), E.MP_URL);
    await listWithBulk(page, E.MP_URL);
    ok(page.mp.errors.length === 0, `list: no console errors${page.mp.errors.length ? ': ' + page.mp.errors.join(' | ') : ''}`);
    ok(page.mp.foreign.length === 0, `list: no request to another origin${page.mp.foreign.length ? ': ' + page.mp.foreign.join(' ') : ''}`);
  } else {
    // 1. the open server: the walkthrough, then the memory panel
    const page = await watchedPage(browser.defaultBrowserContext(), E.MP_URL);
    await walkthrough(page, E.MP_URL, 'open', { shots: true });
    await searchAndProgress(page, E.MP_URL, 'open');
    await memoryPanel(page, E.MP_URL, 'open', true);
    ok(page.mp.errors.length === 0, `open: no console errors${page.mp.errors.length ? ': ' + page.mp.errors.join(' | ') : ''}`);
    ok(page.mp.foreign.length === 0, `open: no request to another origin${page.mp.foreign.length ? ': ' + page.mp.foreign.join(' ') : ''}`);

    // 2. the same behind HTTP Basic auth: refused without credentials, the whole walkthrough with them
    const ctx = await browser.createBrowserContext();
    const r401 = await fetch(E.MP_AUTH_URL + '/app/');
    ok(r401.status === 401 && /Basic/.test(r401.headers.get('www-authenticate') || ''), `auth: /app/ without credentials answers ${r401.status} with a Basic challenge`);
    const page2 = await watchedPage(ctx, E.MP_AUTH_URL);
    page2.mp.user = E.MP_USER;
    page2.mp.pass = E.MP_PASS;
    await page2.authenticate({ username: E.MP_USER, password: E.MP_PASS });
    await walkthrough(page2, E.MP_AUTH_URL, 'auth', { shots: false });
    await actions(page2, E.MP_AUTH_URL, 'auth');
    await memoryPanel(page2, E.MP_AUTH_URL, 'auth', false);
    const stored = await page2.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML);
    ok(!stored.includes(E.MP_PASS), 'auth: the password appears nowhere in the page or its storage');
    ok(page2.mp.errors.length === 0, `auth: no console errors${page2.mp.errors.length ? ': ' + page2.mp.errors.join(' | ') : ''}`);
    ok(page2.mp.foreign.length === 0, 'auth: no request to another origin');
  }
} catch (e) {
  ok(false, `walkthrough stopped: ${e.stack || e}`);
  // what the page showed then: its URL, the text of <main>, a screenshot next to the others
  if (lastPage) {
    const seen = await lastPage.evaluate(() => `${location.href} | ${(document.getElementById('main')?.innerText || '').replace(/\s+/g, ' ').slice(0, 600)}`).catch(x => String(x));
    console.log(`NOTE: at the failure: ${seen}`);
    if (SHOTS) await lastPage.screenshot({ path: path.join(SHOTS, 'failure.png') }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(`browser tests: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
