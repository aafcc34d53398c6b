// jobs.js -- the jobs page: every job with its state and progress, refreshed every second
// while shown, and the actions the state allows (pause, resume, cancel, resubmit).
import { api } from './api.js';
import { clear, errorBox, h, orthancTime, progressBar, toast } from './ui.js';

const ACTIONS = {
  Pending: ['pause', 'cancel'], Running: ['pause', 'cancel'], Paused: ['resume', 'cancel'],
  Retry: ['cancel'], Failure: ['resubmit'], Success: [],
};

function row(job, refresh) {
  const bar = progressBar(`Progress of job ${job.ID}`);
  bar.set(job.Progress ?? 0, job.State === 'Failure' ? 'failed' : job.State === 'Success' ? 'done' : null);
  const content = job.Content || {};
  const result = job.State === 'Success' && content.ID && content.Type === 'Study'
    ? h('a', { href: `#/study/${content.ID}` }, 'result') : null;
  return h('tr', { dataset: { job: job.ID, state: job.State } },
    h('td', {}, h('code', { title: job.ID }, job.ID.slice(0, 8))),
    h('td', {}, job.Type, content.Description ? h('div', { class: 'muted small' }, content.Description) : null),
    h('td', {}, h('span', { class: `state s-${job.State}` }, job.State)),
    h('td', { class: 'prog' }, bar, h('span', { class: 'pct' }, `${job.Progress ?? 0} %`)),
    h('td', {}, orthancTime(job.CreationTime)),
    h('td', {}, orthancTime(job.CompletionTime)),
    h('td', {}, job.State === 'Failure' ? h('span', { class: 'err' }, job.ErrorDetails || job.ErrorDescription || '') : result),
    h('td', { class: 'acts' }, (ACTIONS[job.State] || []).map(a => h('button', { type: 'button', class: 'small',
      'aria-label': `${a} job ${job.ID.slice(0, 8)}`,
      onclick: async () => {
        try { await api(`jobs/${job.ID}/${a}`, { method: 'POST', body: {} }); refresh(); } catch (e) { toast(e.message, 'error'); }
      } }, a[0].toUpperCase() + a.slice(1)))));
}

export async function render(main) {
  const box = h('div', {});
  const live = h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: true, id: 'jobs-live' }), ' Refresh every second');
  clear(main, h('div', { class: 'page-head' }, h('h1', {}, 'Jobs'), live), box);
  let stopped = false;
  const refresh = async () => {
    try {
      const jobs = await api('jobs?expand');
      jobs.sort((a, b) => String(b.CreationTime).localeCompare(String(a.CreationTime)));
      clear(box, jobs.length ? h('table', { class: 'list jobs' }, h('caption', { class: 'sr-only' }, 'Jobs'),
        h('thead', {}, h('tr', {}, ['Job', 'Type', 'State', 'Progress', 'Created', 'Completed', 'Result', 'Actions'].map(c => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, jobs.map(j => row(j, refresh)))) : h('p', { class: 'empty' }, 'No job yet. Anonymizing, modifying or sending a study runs one.'));
    } catch (e) { clear(box, errorBox(e)); }
  };
  await refresh();
  const timer = setInterval(() => {
    if (stopped || document.hidden || !main.querySelector('#jobs-live')?.checked) return;
    // Keep focus where it was across the refresh (keyboard users on an action button).
    const focused = document.activeElement?.closest('tr')?.dataset.job;
    refresh().then(() => { if (focused) box.querySelector(`tr[data-job="${focused}"] button`)?.focus(); });
  }, 1000);
  return () => { stopped = true; clearInterval(timer); };
}
