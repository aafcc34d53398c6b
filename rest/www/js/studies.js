// studies.js -- the studies and patients lists: search form, server-side paging through
// /tools/find (Since/Limit; one row more than the page tells whether a next page exists),
// sorting of the page's rows by column. Orthanc 1.10's /tools/find has no ordering, so a
// sort orders the rows of the page on screen, in the server's order otherwise.
import { answer, api, ApiError } from './api.js';
import { clear, dicomDate, errorBox, h, personName } from './ui.js';
import { findBody, PAGE_SIZES, pageParams, studyQuery, takeEarly } from './early.js';
const MODALITIES = ['', 'CT', 'MR', 'US', 'CR', 'DX', 'MG', 'PT', 'NM', 'XA', 'RF', 'OT', 'SR', 'SEG'];

function go(kind, q) {
  const s = new URLSearchParams([...q].filter(([, v]) => v !== '' && v !== null && v !== undefined)).toString();
  location.hash = `#/${kind}${s ? '?' + s : ''}`;
}

function field(label, name, value, attrs = {}) {
  const id = `f-${name}`;
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('input', { id, name, value: value || '', autocomplete: 'off', ...attrs }));
}

function searchForm(kind, q) {
  const study = kind === 'studies';
  const form = h('form', { class: 'search', role: 'search', 'aria-label': `Search ${kind}`,
    onsubmit: e => {
      e.preventDefault();
      const f = new FormData(form);
      const nq = new URLSearchParams();
      for (const [k, v] of f) if (String(v).trim()) nq.set(k, String(v).trim());
      if (q.get('size')) nq.set('size', q.get('size'));
      go(kind, nq);
    } },
  field('Patient name', 'name', q.get('name'), { placeholder: 'e.g. Doe' }),
  field('Patient ID', 'pid', q.get('pid')),
  study && field('Accession', 'acc', q.get('acc')),
  study && field('Study date from', 'from', q.get('from'), { type: 'date' }),
  study && field('to', 'to', q.get('to'), { type: 'date' }),
  study && h('div', { class: 'field' }, h('label', { for: 'f-mod' }, 'Modality'),
    h('select', { id: 'f-mod', name: 'mod' }, MODALITIES.map(m =>
      h('option', { value: m, selected: q.get('mod') === m }, m || 'Any')))),
  h('div', { class: 'field actions' },
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
    h('button', { type: 'button', onclick: () => go(kind, new URLSearchParams()) }, 'Clear')));
  return form;
}

// Studies of one page. With a modality, Orthanc's ModalitiesInStudy is tried first; a server
// that refuses it gets the same search at series level, folded into their studies.
async function findStudies(q, since, limit) {
  const query = studyQuery(q);
  const mod = q.get('mod');
  if (!mod) {
    const body = findBody(q, since, limit);
    const early = takeEarly(body);
    return early ? early.then(r => answer(r, 'POST', 'tools/find')) : api('tools/find', { method: 'POST', body });
  }
  try {
    return await api('tools/find', { method: 'POST', body: { Level: 'Study', Query: { ...query, ModalitiesInStudy: mod }, Expand: true, Since: since, Limit: limit } });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 400) throw e;
  }
  const series = await api('tools/find', { method: 'POST', body: { Level: 'Series', Query: { ...query, Modality: mod }, Expand: true } });
  const ids = [...new Set(series.map(s => s.ParentStudy))].slice(since, since + limit);
  return Promise.all(ids.map(id => api(`studies/${id}`)));
}

function sortRows(rows, key, dir) {
  if (!key) return rows;
  const m = dir === 'desc' ? -1 : 1;
  return [...rows].sort((a, b) => m * String(key(a) ?? '').localeCompare(String(key(b) ?? ''), undefined, { numeric: true }));
}

function table(kind, columns, rows, q, caption) {
  const sort = q.get('sort');
  const dir = q.get('dir') || 'asc';
  const col = columns.find(c => c.key === sort);
  const sorted = sortRows(rows, col?.value, dir);
  const head = h('tr', {}, columns.map(c => {
    const active = c.key === sort;
    const th = h('th', { scope: 'col', 'aria-sort': active ? (dir === 'asc' ? 'ascending' : 'descending') : null, class: c.class });
    if (c.value) {
      th.append(h('button', { type: 'button', class: 'sort', onclick: () => {
        const nq = new URLSearchParams(q);
        nq.set('sort', c.key);
        nq.set('dir', active && dir === 'asc' ? 'desc' : 'asc');
        go(kind, nq);
      } }, c.label, h('span', { class: 'arrow', 'aria-hidden': 'true' }, active ? (dir === 'asc' ? '▲' : '▼') : '↕')));
    } else th.append(c.label);
    return th;
  }));
  return h('table', { class: 'list' }, h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, head),
    h('tbody', {}, sorted.map(r => h('tr', {}, columns.map(c => h('td', { class: c.class, 'data-label': c.label }, c.cell(r)))))));
}

function pager(kind, q, page, size, count, more, total) {
  const from = page * size + 1;
  const to = page * size + count;
  const nav = (p) => { const nq = new URLSearchParams(q); nq.set('page', String(p)); go(kind, nq); };
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: page === 0, onclick: () => nav(page - 1) }, '‹ Previous'),
    h('span', { class: 'range', 'aria-live': 'polite' }, count ? `${from}–${to}${total !== undefined ? ` of ${total}` : ''}` : 'No results'),
    h('button', { type: 'button', disabled: !more, onclick: () => nav(page + 1) }, 'Next ›'),
    h('label', { class: 'size' }, 'Rows per page ',
      h('select', { onchange: e => { const nq = new URLSearchParams(q); nq.set('size', e.target.value); nq.delete('page'); go(kind, nq); } },
        PAGE_SIZES.map(n => h('option', { value: n, selected: n === size }, n)))));
}

export async function renderStudies(main, _params, q) {
  const { size, page } = pageParams(q);
  const results = h('div', { class: 'results', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Searching…'));
  clear(main, h('div', { class: 'page-head' }, h('h1', {}, 'Studies'),
    h('a', { class: 'button primary', href: '#/upload' }, 'Upload files')), searchForm('studies', q), results);
  const filtered = ['name', 'pid', 'acc', 'from', 'to', 'mod'].some(k => q.get(k));
  let rows;
  try {
    rows = await findStudies(q, page * size, size + 1);
  } catch (e) {
    clear(results, errorBox(e));
    results.removeAttribute('aria-busy');
    return;
  }
  const more = rows.length > size;
  rows = rows.slice(0, size);
  const mods = new Map();
  const columns = [
    { key: 'name', label: 'Patient', value: r => personName(r.PatientMainDicomTags?.PatientName),
      cell: r => h('a', { href: `#/study/${r.ID}`, class: 'row-link' }, personName(r.PatientMainDicomTags?.PatientName) || '(no name)') },
    { key: 'pid', label: 'Patient ID', value: r => r.PatientMainDicomTags?.PatientID, cell: r => r.PatientMainDicomTags?.PatientID || '' },
    { key: 'date', label: 'Study date', value: r => r.MainDicomTags?.StudyDate, cell: r => dicomDate(r.MainDicomTags?.StudyDate) },
    { key: 'desc', label: 'Description', value: r => r.MainDicomTags?.StudyDescription, cell: r => r.MainDicomTags?.StudyDescription || '' },
    { key: 'acc', label: 'Accession', value: r => r.MainDicomTags?.AccessionNumber, cell: r => r.MainDicomTags?.AccessionNumber || '' },
    { key: 'mod', label: 'Modalities', cell: r => { const s = h('span', { class: 'mods' }); mods.set(r.ID, s); return s; } },
    { key: 'series', label: 'Series', class: 'num', value: r => String(r.Series?.length ?? 0).padStart(6, '0'), cell: r => r.Series?.length ?? '' },
  ];
  clear(results, rows.length ? table('studies', columns, rows, q, 'Studies found') :
    h('p', { class: 'empty' }, filtered ? 'No study matches this search.' : 'No study stored yet. ', !filtered && h('a', { href: '#/upload' }, 'Upload some DICOM files.')));
  const pg = pager('studies', q, page, size, rows.length, more, undefined);
  results.append(pg);
  results.removeAttribute('aria-busy');
  performance.mark('mp-studies-rendered');
  window.mpStudiesRenderedAt = performance.now();
  if (!filtered) {
    api('statistics').then(s => { pg.querySelector('.range').textContent = rows.length ? `${page * size + 1}–${page * size + rows.length} of ${s.CountStudies}` : 'No results'; }).catch(() => {});
  }
  // Modalities are a series-level tag: filled in after the page is shown, by one series-level
  // find for the whole page (a '\\' list of the page's StudyInstanceUIDs), not a request a row.
  const uids = rows.map(r => r.MainDicomTags?.StudyInstanceUID).filter(Boolean);
  if (uids.length) {
    api('tools/find', { method: 'POST', body: { Level: 'Series', Query: { StudyInstanceUID: uids.join('\\') }, Expand: true } }).then(series => {
      const byStudy = new Map();
      for (const s of series) {
        const m = s.MainDicomTags?.Modality;
        if (!m) continue;
        if (!byStudy.has(s.ParentStudy)) byStudy.set(s.ParentStudy, new Set());
        byStudy.get(s.ParentStudy).add(m);
      }
      for (const [id, span] of mods) span.replaceChildren(...[...byStudy.get(id) || []].map(m => h('span', { class: 'tag' }, m)));
      results.dataset.modalities = 'done';
    }).catch(() => {});
  }
}

export async function renderPatients(main, _params, q) {
  const { size, page } = pageParams(q);
  const results = h('div', { class: 'results', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Searching…'));
  clear(main, h('div', { class: 'page-head' }, h('h1', {}, 'Patients')), searchForm('patients', q), results);
  const query = {};
  if (q.get('name')) query.PatientName = `*${q.get('name')}*`;
  if (q.get('pid')) query.PatientID = `*${q.get('pid')}*`;
  let rows;
  try {
    rows = await api('tools/find', { method: 'POST', body: { Level: 'Patient', Query: query, Expand: true, Since: page * size, Limit: size + 1 } });
  } catch (e) {
    clear(results, errorBox(e));
    return;
  }
  const more = rows.length > size;
  rows = rows.slice(0, size);
  const columns = [
    { key: 'name', label: 'Patient', value: r => personName(r.MainDicomTags?.PatientName),
      cell: r => h('a', { href: `#/studies?pid=${encodeURIComponent(r.MainDicomTags?.PatientID || '')}&exact=1`, class: 'row-link' }, personName(r.MainDicomTags?.PatientName) || '(no name)') },
    { key: 'pid', label: 'Patient ID', value: r => r.MainDicomTags?.PatientID, cell: r => r.MainDicomTags?.PatientID || '' },
    { key: 'birth', label: 'Birth date', value: r => r.MainDicomTags?.PatientBirthDate, cell: r => dicomDate(r.MainDicomTags?.PatientBirthDate) },
    { key: 'sex', label: 'Sex', value: r => r.MainDicomTags?.PatientSex, cell: r => r.MainDicomTags?.PatientSex || '' },
    { key: 'studies', label: 'Studies', class: 'num', value: r => String(r.Studies?.length ?? 0).padStart(6, '0'), cell: r => r.Studies?.length ?? '' },
    { key: 'prot', label: 'Protected', cell: r => r.IsProtected ? 'yes' : '' },
  ];
  clear(results, rows.length ? table('patients', columns, rows, q, 'Patients found') : h('p', { class: 'empty' }, 'No patient matches.'),
    pager('patients', q, page, size, rows.length, more));
  results.removeAttribute('aria-busy');
}
