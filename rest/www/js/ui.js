// ui.js -- DOM helpers, formatting, toasts, dialogs, progress bars.

// h('div', {class: 'x', onclick: fn}, child, 'text', [more]) -> Element
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(n) {
  if (n === undefined || n === null || isNaN(n)) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i && Math.abs(v) < 10 ? 1 : 0)} ${u[i]}`;
}

// DICOM DA "20240131" -> "2024-01-31"
export function dicomDate(s) {
  if (!s || s.length < 8) return s || '';
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}`;
}

// DICOM PN "Doe^John" -> "Doe, John"
export function personName(s) {
  if (!s) return '';
  const [fam, given, middle] = s.split('=')[0].split('^');
  return [fam, [given, middle].filter(Boolean).join(' ')].filter(Boolean).join(', ');
}

// Orthanc "20240131T120000" -> local readable
export function orthancTime(s) {
  if (!s) return '';
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)/.exec(s);
  return m ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}` : s;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = h('div', { class: `toast ${kind}` }, message);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

// A progress bar that screen readers can follow.
export function progressBar(label) {
  const fill = h('span', { class: 'fill' });
  const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-label': label,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' }, fill);
  bar.set = (pct, state) => {
    const p = Math.max(0, Math.min(100, Math.round(pct)));
    fill.style.width = p + '%';
    bar.setAttribute('aria-valuenow', String(p));
    bar.dataset.value = String(p);
    bar.classList.toggle('failed', state === 'failed');
    bar.classList.toggle('done', state === 'done');
  };
  return bar;
}

// A modal dialog (the native <dialog>: focus is trapped and Escape closes it). build(close)
// returns the body; resolves to what close() was given, or null when dismissed.
export function dialog(title, build) {
  const dlg = document.getElementById('dialog');
  return new Promise(resolve => {
    let result = null;
    const close = v => { result = v; dlg.close(); };
    clear(dlg, h('h2', { id: 'dialog-title' }, title), build(close));
    dlg.addEventListener('close', () => resolve(result), { once: true });
    dlg.showModal();
    const first = dlg.querySelector('[autofocus], input, select, textarea, button.primary, button');
    first?.focus();
  });
}

export function confirmDialog(title, text, action = 'Delete', danger = true) {
  return dialog(title, close => h('form', { method: 'dialog', onsubmit: e => { e.preventDefault(); close(true); } },
    h('p', {}, text),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { type: 'submit', class: danger ? 'danger' : 'primary', autofocus: true }, action))));
}

export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Error: '), err.message || String(err));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== '' && v !== null)
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}
