// system.js -- the server: /system, /statistics, and the live memory panel (memory.js's
// samples drawn as inline SVG: resident memory, DICOM cache, running jobs, and each trim
// with the bytes it gave back), with the same figures as a table for screen readers.
import { api } from './api.js';
import { bytes, clear, h, kv } from './ui.js';
import { INTERVAL_MS, metricsAvailable, onSample, samples, trims } from './memory.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of kids) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clock(t) { return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }); }

export function chart() {
  const W = 760, H = 280, L = 58, R = 16, T = 26, B = 56, JOBS_H = 26;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'mem-title mem-desc' });
  if (!samples.length) {
    svg.append(s('title', { id: 'mem-title' }, 'Memory'), s('desc', { id: 'mem-desc' }, 'No sample yet'),
      s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'Waiting for the first sample…'));
    return svg;
  }
  const now = samples[samples.length - 1].t;
  const t0 = Math.min(samples[0].t, now - 20000); // from the first sample (10 min at most), 20 s at least
  const span = now - t0 || 1;
  const top = niceMax(Math.max(...samples.map(x => Math.max(x.rss || 0, x.cache || 0))) * 1.1);
  const plotB = H - B - JOBS_H - 8;
  const x = t => L + (W - L - R) * (t - t0) / span;
  const y = v => T + (plotB - T) * (1 - v / top);
  const lastS = samples[samples.length - 1];
  svg.append(s('title', { id: 'mem-title' }, 'Server memory over the last minutes'),
    s('desc', { id: 'mem-desc' }, `Resident memory ${bytes(lastS.rss)}, DICOM cache ${bytes(lastS.cache)}, ${trims.length} trims shown`));
  for (let i = 0; i <= 4; i++) {
    const v = top * i / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, bytes(v)));
  }
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + span * i / ticks;
    svg.append(s('text', { x: x(t), y: H - B + 20, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle', class: 'axis' }, clock(t)));
  }
  const path = key => samples.filter(p => p[key] !== undefined).map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join('');
  svg.append(s('path', { d: path('cache'), class: 'line cache' }), s('path', { d: path('rss'), class: 'line rss' }));
  // jobs: a strip of bars under the plot
  const jy = plotB + 8;
  const jmax = Math.max(1, ...samples.map(p => p.jobsRunning + p.jobsPending));
  svg.append(s('text', { x: L - 6, y: jy + JOBS_H / 2 + 4, 'text-anchor': 'end', class: 'axis' }, 'jobs'),
    s('line', { x1: L, x2: W - R, y1: jy + JOBS_H, y2: jy + JOBS_H, class: 'grid' }));
  const bw = Math.max(1.5, (W - L - R) * INTERVAL_MS / span * 0.8);
  for (const p of samples) {
    const n = p.jobsRunning + p.jobsPending;
    if (!n) continue;
    const hgt = JOBS_H * n / jmax;
    svg.append(s('rect', { x: x(p.t) - bw / 2, y: jy + JOBS_H - hgt, width: bw, height: hgt, class: 'jobs' },
      s('title', {}, `${clock(p.t)}: ${p.jobsRunning} running, ${p.jobsPending} pending`)));
  }
  // trims: a marker at each, labelled with what it gave back
  let lastLabel = -1e9;
  for (const tr of trims) {
    const tx = x(tr.t);
    if (tx < L) continue;
    const g = s('g', { class: tr.released > 0 ? 'trim gave' : 'trim', 'data-released': tr.released },
      s('line', { x1: tx, x2: tx, y1: T, y2: plotB }),
      s('path', { d: `M${tx - 5},${T - 10}h10l-5,8z` }),
      s('title', {}, `${clock(tr.t)}: ${tr.count > 1 ? `${tr.count} trims` : 'trim'}, gave back ${bytes(tr.released)}`));
    const anchor = tx > W - R - 30 ? 'end' : tx < L + 30 ? 'start' : 'middle';
    const room = tx - lastLabel > 56; // labels never overlap; each trim keeps its tooltip
    if (tr.released > 0 && room) lastLabel = tx;
    if (tr.released > 0 && room) g.append(s('text', { x: anchor === 'end' ? tx + 5 : tx, y: T - 13, 'text-anchor': anchor, class: 'trim-label' }, `−${bytes(tr.released)}`));
    svg.append(g);
  }
  // legend
  const lg = s('g', { class: 'legend', transform: `translate(${L},${H - 14})` });
  [['rss', 'Resident memory (RSS)'], ['cache', 'DICOM cache'], ['jobs', 'Jobs running + pending'], ['trim', 'Trim (bytes given back)']].forEach(([c, label], i) => {
    const gx = i * 170;
    lg.append(c === 'jobs' ? s('rect', { x: gx, y: -8, width: 14, height: 10, class: 'jobs' })
      : c === 'trim' ? s('path', { d: `M${gx + 2},-9h10l-5,8z`, class: 'trim-key' })
        : s('line', { x1: gx, x2: gx + 16, y1: -3, y2: -3, class: `line ${c}` }),
    s('text', { x: gx + 20, y: 1, class: 'axis' }, label));
  });
  svg.append(lg);
  return svg;
}

export async function render(main) {
  const [sys, stats] = await Promise.all([api('system'), api('statistics')]);
  const chartBox = h('div', { class: 'chart-box' });
  const figures = h('div', { class: 'figures' });
  const trimTable = h('div', {});
  const draw = () => {
    chartBox.replaceChildren(metricsAvailable() ? chart() : h('p', { class: 'muted' }, 'Metrics are off (MetricsEnabled) or unavailable.'));
    const l = samples[samples.length - 1];
    if (l) {
      const released = trims.reduce((a, t) => a + (t.released || 0), 0);
      figures.replaceChildren(...[
        ['Resident memory', bytes(l.rss), 'rss'], ['DICOM cache', bytes(l.cache), 'cache'],
        ['Jobs running', l.jobsRunning, 'jobs'], ['Jobs pending', l.jobsPending, 'jobs'],
        ['Trims since start', l.trimsTotal ?? '–', 'trim'], ['Given back since start', bytes(l.releasedTotal), 'trim'],
        ['Given back, this chart', bytes(released), 'trim'],
      ].map(([k, v, c]) => h('div', { class: `figure ${c}` }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, v))));
      if (l.trimming === 0) figures.append(h('p', { class: 'muted' }, 'The housekeeper is off (MemoryTrimmingInterval 0).'));
    }
    const recent = trims.slice(-8).reverse();
    trimTable.replaceChildren(recent.length ? h('table', { class: 'list compact trims' },
      h('caption', {}, 'Latest trims'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Trims'), h('th', { scope: 'col', class: 'num' }, 'Bytes given back'))),
      h('tbody', {}, recent.map(t => h('tr', {}, h('td', {}, clock(t.t)), h('td', {}, t.count), h('td', { class: 'num' }, bytes(t.released))))))
      : h('p', { class: 'muted' }, 'No trim seen yet while this page was open.'));
  };
  clear(main, h('h1', {}, 'System'),
    h('section', { class: 'card memory', 'aria-labelledby': 'mem-h' },
      h('div', { class: 'row' }, h('h2', { id: 'mem-h' }, 'Memory, live'), h('span', { class: 'muted' }, `sampled every ${INTERVAL_MS / 1000} s from /tools/metrics-prometheus`)),
      figures, chartBox, trimTable),
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', {}, 'Server'), kv([
        ['Name', sys.Name], ['Version', `${sys.ServerName || 'MiniPACS'} ${sys.ServerVersion || ''} (Orthanc API ${sys.Version})`],
        ['DICOM AET', sys.DicomAet], ['DICOM port', sys.DicomPort], ['HTTP port', sys.HttpPort],
        ['Database', sys.DatabaseBackendPlugin || 'SQLite (built in)'], ['Storage', sys.StorageAreaPlugin || 'files (built in)']])),
      h('section', { class: 'card' }, h('h2', {}, 'Statistics'), kv([
        ['Patients', stats.CountPatients], ['Studies', stats.CountStudies], ['Series', stats.CountSeries], ['Instances', stats.CountInstances],
        ['Disk size', bytes(Number(stats.TotalDiskSize))], ['Uncompressed size', bytes(Number(stats.TotalUncompressedSize))]]))));
  draw();
  return onSample(draw);
}
