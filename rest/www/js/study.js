// study.js -- a study: its patient and study tags, the actions (each a job with a live
// progress bar where the server runs one), and its series with instance thumbnails.
// Also the page of one series (all its instances).
import { api, hasRoute, url } from './api.js';
import { clear, dicomDate, errorBox, h, kv, personName } from './ui.js';
import { studyActions } from './actions.js';

const THUMBS_PER_SERIES = 12;

function instanceNumber(i) {
  return Number(i.MainDicomTags?.InstanceNumber ?? i.IndexInSeries ?? 0);
}

function thumb(inst, previews) {
  const n = inst.MainDicomTags?.InstanceNumber;
  const label = `Instance ${n ?? ''}`.trim();
  const fig = h('a', { class: 'thumb', href: `#/instance/${inst.ID}`, title: label },
    previews
      ? h('img', { src: url(`instances/${inst.ID}/preview`, 'GET'), alt: label, loading: 'lazy', width: 128, height: 128,
        onerror: e => e.target.replaceWith(h('span', { class: 'noimg' }, 'no preview')) })
      : h('span', { class: 'noimg', title: 'Thumbnails need the server\'s /instances/{id}/preview route' }, '#' + (n ?? '?')),
    h('span', { class: 'cap' }, n !== undefined ? `#${n}` : ''));
  return fig;
}

function seriesBlock(s, instances, previews, limit) {
  const t = s.MainDicomTags || {};
  const sorted = [...instances].sort((a, b) => instanceNumber(a) - instanceNumber(b));
  const shown = limit ? sorted.slice(0, limit) : sorted;
  return h('section', { class: 'series card', 'aria-labelledby': `s-${s.ID}` },
    h('header', {},
      h('h3', { id: `s-${s.ID}` }, h('span', { class: 'tag' }, t.Modality || '?'), ' ',
        t.SeriesDescription || '(no description)', h('span', { class: 'muted' }, ` · series ${t.SeriesNumber ?? ''} · ${instances.length} instance${instances.length === 1 ? '' : 's'}`)),
      limit && instances.length > limit ? h('a', { href: `#/series/${s.ID}` }, `All ${instances.length} instances`) : null),
    h('div', { class: 'thumbs' }, shown.map(i => thumb(i, previews))));
}

export async function render(main, [id]) {
  clear(main, h('p', { class: 'muted' }, 'Loading study…'));
  const [st, series] = await Promise.all([api(`studies/${id}`), api(`studies/${id}/series`)]);
  const firstInstance = series.find(s => s.Instances?.length)?.Instances[0];
  const previews = firstInstance ? await hasRoute('preview', `instances/${firstInstance}/preview`, 'GET') : false;
  const p = st.PatientMainDicomTags || {};
  const t = st.MainDicomTags || {};
  const seriesBox = h('div', { class: 'series-list' }, h('p', { class: 'muted' }, 'Loading series…'));
  const activity = h('div', { class: 'activity', 'aria-live': 'polite' });
  clear(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/studies' }, 'Studies'), ' › ',
      h('a', { href: `#/studies?pid=${encodeURIComponent(p.PatientID || '')}&exact=1` }, personName(p.PatientName) || p.PatientID || 'Patient')),
    h('div', { class: 'page-head' }, h('h1', {}, t.StudyDescription || 'Study', h('span', { class: 'muted' }, ` · ${personName(p.PatientName)}`))),
    h('div', { class: 'grid2' },
      h('section', { class: 'card', 'aria-label': 'Patient' }, h('h2', {}, 'Patient'),
        kv([['Name', personName(p.PatientName)], ['ID', p.PatientID], ['Birth date', dicomDate(p.PatientBirthDate)], ['Sex', p.PatientSex]])),
      h('section', { class: 'card', 'aria-label': 'Study' }, h('h2', {}, 'Study'),
        kv([['Date', dicomDate(t.StudyDate)], ['Description', t.StudyDescription], ['Accession', t.AccessionNumber],
          ['Study ID', t.StudyID], ['Referring physician', personName(t.ReferringPhysicianName)],
          ['Study UID', h('code', {}, t.StudyInstanceUID || '')], ['Stable', st.IsStable ? 'yes' : 'not yet (StableAge)']]))),
    studyActions(st, activity),
    activity,
    h('h2', {}, `Series (${series.length})`),
    seriesBox);
  const blocks = await Promise.all(series.map(async s => {
    const instances = await api(`series/${s.ID}/instances`);
    return seriesBlock(s, instances, previews, THUMBS_PER_SERIES);
  }));
  clear(seriesBox, blocks.length ? blocks : h('p', { class: 'empty' }, 'No series.'));
}

export async function renderSeries(main, [id]) {
  clear(main, h('p', { class: 'muted' }, 'Loading series…'));
  const [s, instances] = await Promise.all([api(`series/${id}`), api(`series/${id}/instances`)]);
  const previews = instances.length ? await hasRoute('preview', `instances/${instances[0].ID}/preview`, 'GET') : false;
  const st = await api(`studies/${s.ParentStudy}`).catch(() => null);
  clear(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/studies' }, 'Studies'), ' › ',
      st ? h('a', { href: `#/study/${st.ID}` }, st.MainDicomTags?.StudyDescription || 'Study') : 'Study'),
    h('h1', {}, s.MainDicomTags?.SeriesDescription || 'Series'),
    instances.length ? seriesBlock(s, instances, previews, 0) : errorBox(new Error('This series has no instance.')));
}
