// memory.js -- samples /tools/metrics-prometheus every 2 s while the interface is open, and
// keeps the last 10 minutes: resident memory, DICOM cache, jobs, and each trim of the
// housekeeper with the bytes it gave back (minipacs_memory_trims_total tells a trim
// happened; the growth of minipacs_memory_trim_released_bytes_total is what it returned).
import { api, parsePrometheus } from './api.js';

export const INTERVAL_MS = 2000;
export const KEEP_MS = 10 * 60 * 1000;
export const samples = [];   // { t, rss, cache, jobsRunning, jobsPending }
export const trims = [];     // { t, count, released }
const listeners = new Set();
let last = null;
let timer = null;
let available = true;

export function onSample(fn) { listeners.add(fn); return () => listeners.delete(fn); }
export function metricsAvailable() { return available; }

async function tick() {
  if (document.hidden) return;
  let m;
  try {
    m = parsePrometheus(await (await api('tools/metrics-prometheus', { raw: true })).text());
  } catch { available = false; return; }
  available = m.minipacs_resident_memory_bytes !== undefined;
  const t = Date.now();
  const s = {
    t, rss: m.minipacs_resident_memory_bytes, cache: (m.orthanc_dicom_cache_size_mb ?? 0) * 1048576,
    jobsRunning: m.orthanc_jobs_running ?? 0, jobsPending: m.orthanc_jobs_pending ?? 0,
    trimsTotal: m.minipacs_memory_trims_total, releasedTotal: m.minipacs_memory_trim_released_bytes_total,
    lastReleased: m.minipacs_memory_trim_released_bytes, trimming: m.minipacs_memory_trimming_enabled, raw: m,
  };
  if (last && s.trimsTotal > last.trimsTotal) {
    const count = s.trimsTotal - last.trimsTotal;
    const released = count === 1 ? s.lastReleased : s.releasedTotal - last.releasedTotal;
    trims.push({ t, count, released });
  }
  last = s;
  samples.push(s);
  while (samples.length && samples[0].t < t - KEEP_MS) samples.shift();
  while (trims.length && trims[0].t < t - KEEP_MS) trims.shift();
  for (const fn of listeners) fn(s);
}

export function startSampler() {
  if (timer) return;
  tick();
  timer = setInterval(tick, INTERVAL_MS);
}
