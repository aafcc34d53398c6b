// upload.js -- drag and drop (files, folders, ZIP files) or pick files, then POST each file
// to /instances (three at a time) with a progress bar per file and overall, the server's
// answer per file, and a summary: stored / already stored / refused.
import { ApiError, url } from './api.js';
import { bytes, clear, h, progressBar } from './ui.js';
import { zipEntries } from './zip.js';

const PARALLEL = 3;
const state = { items: [], running: 0, queue: [], sentBytes: 0, totalBytes: 0, els: null };

// Files of a dropped folder, recursively (the browser's FileSystemEntry API).
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push(await new Promise((res, rej) => entry.file(f => res({ file: f, name: prefix + f.name }), rej)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walk(e, `${prefix}${entry.name}/`, out);
    }
  }
}

function isZip(name) { return /\.zip$/i.test(name); }

async function addFiles(list) {
  for (const { file, name } of list) {
    if (isZip(name)) {
      try {
        for (const e of await zipEntries(file)) addItem(`${name} › ${e.name}`, e.size, e.read);
      } catch (err) {
        const it = addItem(name, file.size, null);
        finish(it, 'refused', err.message);
      }
    } else {
      addItem(name, file.size, async () => file);
    }
  }
  pump();
}

function addItem(name, size, read) {
  const bar = progressBar(`Upload of ${name}`);
  const status = h('span', { class: 'status' }, 'Waiting');
  const row = h('li', { class: 'upload-item' }, h('span', { class: 'name', title: name }, name), h('span', { class: 'size' }, bytes(size)), bar, status);
  const it = { name, size, read, bar, status, row, sent: 0, result: null };
  state.items.push(it);
  state.totalBytes += size;
  if (read) state.queue.push(it);
  state.els?.list.append(row);
  summary();
  return it;
}

function finish(it, result, text) {
  it.result = result;
  it.status.textContent = text;
  it.status.className = `status r-${result}`;
  it.row.dataset.result = result;
  it.bar.set(100, result === 'refused' ? 'failed' : 'done');
  summary();
}

function post(it, blob) {
  return new Promise(resolve => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url('instances'));
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', 'application/dicom');
    xhr.upload.onprogress = e => {
      const d = e.loaded - it.sent;
      it.sent = e.loaded;
      state.sentBytes += d;
      it.bar.set(e.lengthComputable ? 100 * e.loaded / e.total : 50);
      summary();
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ status: 0, body: null });
    xhr.send(blob);
  });
}

async function run(it) {
  it.status.textContent = 'Sending';
  try {
    const blob = await it.read();
    const { status, body } = await post(it, blob);
    state.sentBytes += it.size - it.sent;
    it.sent = it.size;
    const results = Array.isArray(body) ? body : [body];
    if (status >= 200 && status < 300 && body) {
      const already = results.every(r => r?.Status === 'AlreadyStored');
      finish(it, already ? 'already' : 'stored', already ? 'Already stored' : 'Stored');
      if (results.length === 1 && body.ParentStudy) {
        it.status.append(' · ', h('a', { href: `#/study/${body.ParentStudy}` }, 'study'));
      }
    } else if (status === 0) {
      finish(it, 'refused', 'Network error');
    } else {
      const e = new ApiError(status, body, 'POST', 'instances');
      finish(it, 'refused', e.message);
    }
  } catch (e) {
    finish(it, 'refused', e.message);
  }
}

function pump() {
  while (state.running < PARALLEL && state.queue.length) {
    const it = state.queue.shift();
    state.running++;
    run(it).finally(() => { state.running--; pump(); });
  }
}

function summary() {
  const els = state.els;
  if (!els) return;
  const n = k => state.items.filter(i => i.result === k).length;
  const done = state.items.filter(i => i.result).length;
  els.overall.set(state.totalBytes ? 100 * state.sentBytes / state.totalBytes : 0, done === state.items.length && done ? 'done' : null);
  els.summary.replaceChildren(
    h('span', {}, `${done} of ${state.items.length} file${state.items.length === 1 ? '' : 's'} done`),
    h('span', { class: 'r-stored' }, `${n('stored')} stored`),
    h('span', { class: 'r-already' }, `${n('already')} already stored`),
    h('span', { class: 'r-refused' }, `${n('refused')} refused`));
  els.summary.dataset.stored = n('stored');
  els.summary.dataset.already = n('already');
  els.summary.dataset.refused = n('refused');
  els.summary.dataset.done = String(done === state.items.length && done > 0);
  els.clearBtn.disabled = state.running > 0 || !done;
}

export function render(main) {
  // The inputs are hidden and out of the tab order; their labels are the buttons (one tab stop each).
  const input = h('input', { type: 'file', id: 'files', multiple: true, class: 'sr-only', tabindex: '-1',
    onchange: () => { addFiles([...input.files].map(f => ({ file: f, name: f.name }))); input.value = ''; } });
  const folder = h('input', { type: 'file', id: 'folder', webkitdirectory: true, class: 'sr-only', tabindex: '-1',
    onchange: () => { addFiles([...folder.files].map(f => ({ file: f, name: f.webkitRelativePath || f.name }))); folder.value = ''; } });
  const drop = h('div', { class: 'drop', id: 'drop' },
    h('p', { class: 'big' }, 'Drop DICOM files, folders or ZIP files here'),
    h('p', {}, 'or ', h('label', { for: 'files', class: 'button primary', tabindex: '0', role: 'button',
      onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } } }, 'Choose files'),
    ' ', h('label', { for: 'folder', class: 'button', tabindex: '0', role: 'button',
      onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); folder.click(); } } }, 'Choose a folder')),
    input, folder);
  drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async e => {
    e.preventDefault();
    drop.classList.remove('over');
    const entries = [...e.dataTransfer.items].map(i => i.webkitGetAsEntry?.()).filter(Boolean);
    const out = [];
    if (entries.length) for (const en of entries) await walk(en, '', out);
    else for (const f of e.dataTransfer.files) out.push({ file: f, name: f.name });
    addFiles(out);
  });
  const overall = progressBar('Overall upload');
  const list = h('ol', { class: 'uploads', 'aria-label': 'Files' });
  const sum = h('p', { class: 'summary', 'aria-live': 'polite' });
  const clearBtn = h('button', { type: 'button', onclick: () => {
    state.items = state.items.filter(i => !i.result);
    state.totalBytes = state.items.reduce((a, i) => a + i.size, 0);
    state.sentBytes = state.items.reduce((a, i) => a + i.sent, 0);
    list.replaceChildren(...state.items.map(i => i.row));
    summary();
  } }, 'Clear finished');
  state.els = { list, overall, summary: sum, clearBtn };
  clear(main, h('h1', {}, 'Upload'), drop,
    h('section', { class: 'card', 'aria-label': 'Progress' },
      h('div', { class: 'row' }, h('h2', {}, 'Progress'), clearBtn),
      overall, sum, list));
  list.append(...state.items.map(i => i.row));
  summary();
  return () => { state.els = null; }; // uploads go on in the background; rows are kept
}
