// api.js -- the REST API as any client sees it: relative URLs (so the interface also works
// behind a reverse proxy's prefix), the browser's own credentials (HTTP Basic auth is asked
// and remembered by the browser; no secret is ever stored by this page), Orthanc's JSON error
// bodies turned into readable messages.

export const ROOT = new URL('..', document.baseURI).href; // the server's root, seen from /app/

export class ApiError extends Error {
  constructor(status, body, method, path) {
    const detail = body && (body.Details || body.Message);
    super(detail ? `${detail} (HTTP ${status})` : `${method} ${path}: HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function url(path) {
  return ROOT + path.replace(/^\//, '');
}

// api('studies/ID'), api('tools/find', {method: 'POST', body: {...}}). JSON in and out;
// `raw: true` answers the Response (for text and binary bodies).
export async function api(path, { method = 'GET', body, raw = false, signal } = {}) {
  const opts = { method, credentials: 'same-origin', signal, headers: {} };
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || typeof body === 'string') {
      opts.body = body;
    } else {
      opts.body = JSON.stringify(body);
      opts.headers['Content-Type'] = 'application/json';
    }
  }
  return answer(await fetch(url(path), opts), method, path, raw);
}

// A fetch's Response as api() answers it: the JSON body, or an ApiError (also for early.js's
// request, sent before this module was loaded).
export async function answer(r, method, path, raw = false) {
  if (!r.ok) {
    let b = null;
    try { b = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, b, method, path);
  }
  if (raw) return r;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

// Features that other parts of the server may or may not offer yet (thumbnails, archives,
// modalities, the viewer). A probe asks a real resource: GET where the answer is cheap (a
// thumbnail, the modality list), HEAD where it is not (an archive): a route that exists
// answers anything but 404 (405 "use GET" to a HEAD counts as present). The answer is kept,
// under `key`, for the browser session. The browser logs a probe's 404/405 in its console;
// window.mpProbes lists the probed URLs so that a test can tell them from real errors.
const probes = new Map();
window.mpProbes = [];
export function hasRoute(key, path, method = 'HEAD') {
  const skey = 'mp-probe:' + key;
  if (!probes.has(skey)) {
    const cached = sessionStorage.getItem(skey);
    if (cached === null) window.mpProbes.push(url(path));
    probes.set(skey, cached !== null ? Promise.resolve(cached === '1')
      : fetch(url(path), { method, credentials: 'same-origin' })
        .then(r => r.status !== 404, () => false)
        .then(ok => { sessionStorage.setItem(skey, ok ? '1' : '0'); return ok; }));
  }
  return probes.get(skey);
}

// Follows a job until it ends; onProgress(job) at each poll. Resolves to the final job.
export async function followJob(id, onProgress, { interval = 250, signal } = {}) {
  for (;;) {
    const job = await api(`jobs/${id}`, { signal });
    onProgress?.(job);
    if (job.State === 'Success' || job.State === 'Failure') return job;
    await new Promise(res => setTimeout(res, job.State === 'Paused' ? 1000 : interval));
    if (signal?.aborted) return job;
  }
}

// Prometheus text -> { name: value } (samples without labels only, as we publish them).
export function parsePrometheus(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}
