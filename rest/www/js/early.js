// early.js -- the studies list's first request, sent while the other modules still load.
// index.html loads this module `async` and first; it imports nothing, so it runs as soon as
// it has arrived and, when the page opens on the studies list (the default page) with no
// modality filter, posts the same /tools/find that studies.js would post once every module
// it needs is loaded and evaluated. studies.js takes the Response with takeEarly(body) when
// its body is the same. The query and paging rules live here so that both build the body
// the same way.
export const PAGE_SIZES = [25, 50, 100];

export function pageParams(q) {
  const size = PAGE_SIZES.includes(Number(q.get('size'))) ? Number(q.get('size')) : 25;
  const page = Math.max(0, parseInt(q.get('page') || '0', 10) || 0);
  return { size, page };
}

export function studyQuery(q) {
  const query = {};
  if (q.get('name')) query.PatientName = `*${q.get('name')}*`;
  if (q.get('pid')) query.PatientID = q.get('exact') ? q.get('pid') : `*${q.get('pid')}*`;
  if (q.get('acc')) query.AccessionNumber = `*${q.get('acc')}*`;
  if (q.get('from') || q.get('to'))
    query.StudyDate = `${(q.get('from') || '').replaceAll('-', '')}-${(q.get('to') || '').replaceAll('-', '')}`;
  return query;
}

// The /tools/find body of one page of studies (without the modality rule, see studies.js).
export function findBody(q, since, limit) {
  return { Level: 'Study', Query: studyQuery(q), Expand: true, Since: since, Limit: limit };
}

let early = null;
{
  const [path, qs] = (location.hash.replace(/^#\/?/, '') || 'studies').split('?');
  const q = new URLSearchParams(qs || '');
  if (path === 'studies' && !q.get('mod')) {
    const { size, page } = pageParams(q);
    const body = findBody(q, page * size, size + 1);
    // the same request as api.js's api('tools/find', ...): relative to the server's root
    const promise = fetch(new URL('../tools/find', document.baseURI), { method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    promise.catch(() => {}); // whoever takes it sees the error; nobody taking it is no error
    early = { key: JSON.stringify(body), promise };
  }
}

// The early Response (a promise) for this body, once; null when there is none (another page,
// another body).
export function takeEarly(body) {
  const e = early;
  early = null;
  return e && e.key === JSON.stringify(body) ? e.promise : null;
}
