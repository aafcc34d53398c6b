// webui.mjs -- times a list page in Debian's chromium (headless, puppeteer-core from
// tests/browser/node_modules), the way the issue asks: performance.now() in the page, from
// the navigation's start to the moment the list holds its first page. Run by bench/webui.py.
//
// usage: node bench/webui.mjs URL SELECTOR COUNT LOADS
// Prints one JSON line: {cold: {dom, frame}, warm: [{dom, frame}...], rows}
//   dom:   performance.now() when the document first holds COUNT elements matching SELECTOR
//          (a MutationObserver installed before any of the page's scripts runs);
//   frame: performance.now() in the next animation frame after that (the rows painted).
// cold is a fresh browser context's first load (nothing cached); warm are LOADS reloads in
// one context (the browser's cache as a person's browser has it: revalidations, 304s).
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const { default: puppeteer } = await import(path.join(HERE, '..', 'tests', 'browser', 'node_modules', 'puppeteer-core', 'lib', 'esm', 'puppeteer', 'puppeteer-core.js'));
const [url, selector, count, loads] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5] || 10)];

function watcher(sel, n) {
  window.mpBench = null;
  const check = () => {
    if (window.mpBench || document.querySelectorAll(sel).length < n) return;
    const dom = performance.now();
    window.mpBench = { dom };
    requestAnimationFrame(() => { window.mpBench.frame = performance.now(); });
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
}

async function once(page) {
  await page.goto('about:blank');
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => window.mpBench && window.mpBench.frame, { timeout: 60000, polling: 50 });
  return page.evaluate(() => ({ ...window.mpBench, rows: undefined }));
}

const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  userDataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'mp-bench-chromium-')),
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  await page.evaluateOnNewDocument(watcher, selector, count);
  const cold = await once(page);
  const warm = [];
  for (let i = 0; i < loads; i++) warm.push(await once(page));
  const rows = await page.$$eval(selector, e => e.length);
  console.log(JSON.stringify({ cold, warm, rows }));
} finally {
  await browser.close();
}
