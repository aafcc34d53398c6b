// instance.js -- one instance: preview, tags (sequences folded), metadata, attachments.
import { api, hasRoute, url } from './api.js';
import { bytes, clear, h, kv } from './ui.js';

// /instances/{id}/tags (Orthanc's full format) -> nested definition list; sequences fold.
function tagTree(tags, depth = 0) {
  const rows = Object.entries(tags).map(([key, t]) => {
    const name = h('span', { class: 'tname' }, t.Name || 'Unknown');
    const code = h('code', { class: 'tcode' }, `(${key})`);
    if (t.Type === 'Sequence') {
      const items = t.Value || [];
      return h('li', {}, h('details', { open: depth === 0 && items.length <= 1 ? null : null },
        h('summary', {}, code, ' ', name, h('span', { class: 'muted' }, ` · ${items.length} item${items.length === 1 ? '' : 's'}`)),
        h('ol', { class: 'items' }, items.map((it, i) => h('li', {}, h('span', { class: 'muted' }, `Item ${i + 1}`), tagTree(it, depth + 1))))));
    }
    let value;
    if (t.Type === 'String') value = t.Value;
    else if (t.Type === 'Null') value = h('em', { class: 'muted' }, '(empty)');
    else if (t.Type === 'TooLong') value = h('em', { class: 'muted' }, '(too long to show)');
    else value = h('em', { class: 'muted' }, `(${t.Type || 'binary'})`);
    return h('li', {}, code, ' ', name, h('span', { class: 'tval' }, value));
  });
  return h('ul', { class: depth ? 'tags nested' : 'tags' }, rows);
}

export async function render(main, [id]) {
  clear(main, h('p', { class: 'muted' }, 'Loading instance…'));
  const [inst, tags, metaNames, attNames, previews] = await Promise.all([
    api(`instances/${id}`), api(`instances/${id}/tags`), api(`instances/${id}/metadata`),
    api(`instances/${id}/attachments`), hasRoute('preview', `instances/${id}/preview`, 'GET')]);
  const meta = await Promise.all(metaNames.map(async n => [n, await api(`instances/${id}/metadata/${n}`, { raw: true }).then(r => r.text())]));
  const atts = await Promise.all(attNames.map(async n => {
    const info = {};
    for (const op of ['size', 'compressed-size', 'md5']) {
      info[op] = await api(`instances/${id}/attachments/${n}/${op}`, { raw: true }).then(r => r.text(), () => '');
    }
    return [n, info];
  }));
  const filter = h('input', { id: 'tag-filter', type: 'search', placeholder: 'Filter tags by name, code or value',
    oninput: () => {
      const q = filter.value.toLowerCase();
      for (const li of tree.querySelectorAll(':scope > li')) li.hidden = q && !li.textContent.toLowerCase().includes(q);
    } });
  const tree = tagTree(tags);
  const series = await api(`series/${inst.ParentSeries}`).catch(() => null);
  clear(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/studies' }, 'Studies'), ' › ',
      series ? h('a', { href: `#/study/${series.ParentStudy}` }, 'Study') : 'Study', ' › ',
      series ? h('a', { href: `#/series/${series.ID}` }, series.MainDicomTags?.SeriesDescription || 'Series') : 'Series'),
    h('div', { class: 'page-head' }, h('h1', {}, `Instance ${inst.MainDicomTags?.InstanceNumber ?? ''}`),
      h('a', { class: 'button', href: url(`instances/${id}/file`), download: `${inst.MainDicomTags?.SOPInstanceUID || id}.dcm` }, 'Download DICOM')),
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', {}, 'Preview'),
        previews ? h('img', { class: 'preview', src: url(`instances/${id}/preview`, 'GET'), alt: 'Preview of the instance' })
          : h('p', { class: 'muted' }, 'This server does not render previews (yet).'),
        kv([['SOP Instance UID', h('code', {}, inst.MainDicomTags?.SOPInstanceUID || '')], ['File size', bytes(inst.FileSize)], ['Index in series', inst.IndexInSeries]])),
      h('div', {},
        h('section', { class: 'card' }, h('h2', {}, 'Metadata'), kv(meta.map(([k, v]) => [k, v]))),
        h('section', { class: 'card' }, h('h2', {}, 'Attachments'),
          h('table', { class: 'list compact' }, h('thead', {}, h('tr', {}, ['Name', 'Size', 'Stored size', 'MD5'].map(c => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, atts.map(([n, i]) => h('tr', {}, h('td', {}, n), h('td', {}, bytes(Number(i.size))), h('td', {}, bytes(Number(i['compressed-size']))), h('td', {}, h('code', {}, i.md5))))))))),
    h('section', { class: 'card' }, h('h2', {}, 'Tags'),
      h('div', { class: 'field' }, h('label', { for: 'tag-filter' }, 'Filter'), filter), tree));
}
