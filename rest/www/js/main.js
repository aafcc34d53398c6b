// main.js -- the router: #/<page>/<id>?<query>. Each page module exports render(main, params,
// query) and may return a cleanup function (timers, pollers) called when the page changes.
import { api } from './api.js';
import { clear, errorBox, h } from './ui.js';
import * as studies from './studies.js';
import { onSample, startSampler } from './memory.js';

// The lists (the page most loads open on) are loaded with this module; every other page's
// module when it is first shown (the browser keeps it: index.html asks for the files under a
// versioned URL, cached for good), so that the first page is not held up by compiling them.
const later = (file, fn) => async (...a) => (await import(file))[fn](...a);
const pages = {
  studies: studies.renderStudies,
  patients: studies.renderPatients,
  study: later('./study.js', 'render'),
  series: later('./study.js', 'renderSeries'),
  instance: later('./instance.js', 'render'),
  upload: later('./upload.js', 'render'),
  jobs: later('./jobs.js', 'render'),
  system: later('./system.js', 'render'),
};
const titles = { studies: 'Studies', patients: 'Patients', study: 'Study', series: 'Series',
  instance: 'Instance', upload: 'Upload', jobs: 'Jobs', system: 'System' };

let cleanup = null;
let first = true;

async function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'studies';
  const [path, qs] = hash.split('?');
  const [name, ...params] = path.split('/').map(decodeURIComponent);
  const page = pages[name] ? name : 'studies';
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.dataset.nav === page || (a.dataset.nav === 'studies' && ['study', 'series', 'instance'].includes(page));
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `${titles[page]} · MiniPACS`;
  const main = document.getElementById('main');
  try {
    cleanup = await pages[page](main, params, new URLSearchParams(qs || ''));
  } catch (e) {
    console.warn(e);
    clear(main, h('h1', {}, titles[page]), errorBox(e));
  }
  // keyboard and screen-reader users land on the new page, unless they already went into it
  // while it loaded (typing in its search form): their focus and keystrokes stay where they are
  if (!first && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  first = false;
}

window.addEventListener('hashchange', route);
// The metrics sampler and /system wait for the first page: they would compete with its requests.
route().finally(() => {
  startSampler();
  api('system').then(s => {
    document.getElementById('server-name').textContent = `${s.Name || ''} · AET ${s.DicomAet || ''}`;
  }).catch(() => {});
});
// Jobs running or pending, on the Jobs link (from the same metrics samples).
onSample(s => {
  const n = s.jobsRunning + s.jobsPending;
  const b = document.getElementById('jobs-badge');
  b.hidden = !n;
  b.textContent = n ? String(n) : '';
  b.setAttribute('aria-label', `${n} active`);
});
