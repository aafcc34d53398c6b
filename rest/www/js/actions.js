// actions.js -- what can be done to a study: anonymize, modify, delete, download (ZIP,
// DICOMDIR), send to a modality, open in the viewer. Anything the server runs as a job is
// submitted with "Asynchronous": true and followed on /jobs/{id} with a progress bar.
// Actions whose route the server does not offer (yet) are shown disabled, with the reason.
import { api, followJob, hasRoute, url } from './api.js';
import { confirmDialog, dialog, h, progressBar, toast } from './ui.js';

// A card that follows one job to its end.
export function jobCard(box, label, jobId, onSuccess) {
  const bar = progressBar(label);
  const state = h('span', { class: 'state' }, 'Pending');
  const extra = h('span', { class: 'extra' });
  const cancel = h('button', { type: 'button', class: 'small', onclick: () => api(`jobs/${jobId}/cancel`, { method: 'POST', body: {} }).catch(e => toast(e.message, 'error')) }, 'Cancel');
  const card = h('div', { class: 'job-card', dataset: { job: jobId } },
    h('div', { class: 'row' }, h('strong', {}, label), state, h('a', { href: '#/jobs', class: 'small' }, `job ${jobId.slice(0, 8)}`), cancel),
    bar, extra);
  box.prepend(card);
  followJob(jobId, job => {
    bar.set(job.Progress ?? 0, job.State === 'Failure' ? 'failed' : job.State === 'Success' ? 'done' : null);
    state.textContent = `${job.State} · ${job.Progress ?? 0} %`;
    state.className = `state s-${job.State}`;
  }).then(job => {
    cancel.remove();
    card.dataset.state = job.State;
    if (job.State === 'Success') onSuccess?.(job, extra);
    else extra.replaceChildren(h('span', { class: 'err' }, job.ErrorDetails || job.ErrorDescription || 'The job failed.'));
  }).catch(e => { state.textContent = e.message; });
  return card;
}

// "Tag=Value" lines -> {Tag: Value}; "Tag" lines -> [Tag]
function parseLines(text, pairs) {
  const lines = text.split('\n').map(l => l.trim()).filter(Boolean);
  if (!pairs) return lines;
  const o = {};
  for (const l of lines) {
    const i = l.indexOf('=');
    if (i < 1) throw new Error(`"${l}" is not Tag=Value`);
    o[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return o;
}

function area(label, name, hint, value = '') {
  return h('div', { class: 'field wide' }, h('label', { for: `d-${name}` }, label),
    h('textarea', { id: `d-${name}`, name, rows: 3, spellcheck: 'false', 'aria-describedby': `d-${name}-hint` }, value),
    h('small', { class: 'hint', id: `d-${name}-hint` }, hint));
}

function editForm(close, anonymize) {
  const err = h('p', { class: 'err', role: 'alert' });
  const custom = h('fieldset', { class: 'custom', disabled: anonymize },
    h('legend', {}, anonymize ? 'Custom rules (on top of the basic profile)' : 'Changes'),
    area('Replace (one Tag=Value a line)', 'replace', 'Tags by name or as gggg,eeee, e.g. PatientName=Anonymous^Study'),
    area('Remove (one tag a line)', 'remove', 'e.g. InstitutionName'),
    anonymize ? area('Keep (one tag a line)', 'keep', 'e.g. StudyDescription (kept as it is)') : null,
    anonymize ? h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'private' }), ' Keep private tags')
      : h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'force' }), ' Force (allow changing PatientID and UIDs)'));
  const form = h('form', { onsubmit: e => {
    e.preventDefault();
    const f = new FormData(form);
    const body = { Asynchronous: true };
    try {
      if (!anonymize || f.get('profile') === 'custom') {
        const rep = parseLines(String(f.get('replace') || ''), true);
        const rem = parseLines(String(f.get('remove') || ''));
        if (Object.keys(rep).length) body.Replace = rep;
        if (rem.length) body.Remove = rem;
        if (anonymize) {
          const keep = parseLines(String(f.get('keep') || ''));
          if (keep.length) body.Keep = keep;
          if (f.get('private')) body.KeepPrivateTags = true;
        } else {
          if (!body.Replace && !body.Remove) throw new Error('Give at least one tag to replace or remove.');
          if (f.get('force')) body.Force = true;
        }
      }
    } catch (ex) {
      err.textContent = ex.message;
      return;
    }
    close(body);
  } },
  anonymize && h('fieldset', { class: 'profile' }, h('legend', {}, 'Profile'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'profile', value: 'basic', checked: true,
      onchange: () => { custom.disabled = true; } }), ' Basic profile (PS 3.15 basic confidentiality, new UIDs, PatientName/ID replaced)'),
    h('label', { class: 'check' }, h('input', { type: 'radio', name: 'profile', value: 'custom',
      onchange: () => { custom.disabled = false; } }), ' Basic profile with my Keep / Replace / Remove rules')),
  custom, err,
  h('div', { class: 'buttons' },
    h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
    h('button', { type: 'submit', class: 'primary' }, anonymize ? 'Anonymize' : 'Modify')));
  return form;
}

function linkButton(label, enabled, href, reason, attrs = {}) {
  if (enabled) return h('a', { class: 'button', href, ...attrs }, label);
  return h('button', { type: 'button', disabled: true, title: reason, 'aria-describedby': null }, label);
}

export function studyActions(st, activity) {
  const id = st.ID;
  const uid = st.MainDicomTags?.StudyInstanceUID || '';
  const bar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Study actions' });
  const openStudy = (job, extra) => {
    const nid = job.Content?.ID;
    if (nid) extra.replaceChildren('Done: ', h('a', { href: `#/study/${nid}`, class: 'result' }, 'open the new study'));
  };
  const run = async (anonymize) => {
    const body = await dialog(anonymize ? 'Anonymize this study' : 'Modify this study', close => editForm(close, anonymize));
    if (!body) return;
    try {
      const r = await api(`studies/${id}/${anonymize ? 'anonymize' : 'modify'}`, { method: 'POST', body });
      jobCard(activity, anonymize ? 'Anonymization' : 'Modification', r.ID, openStudy);
    } catch (e) { toast(e.message, 'error'); }
  };
  const del = async () => {
    const ok = await confirmDialog('Delete this study?', `The study "${st.MainDicomTags?.StudyDescription || uid}" and its ${st.Series?.length ?? 0} series will be removed from the server. This cannot be undone.`);
    if (!ok) return;
    try {
      await api(`studies/${id}`, { method: 'DELETE' });
      toast('Study deleted.');
      location.hash = '#/studies';
    } catch (e) { toast(e.message, 'error'); }
  };
  const send = async (modalities) => {
    const target = await dialog('Send to a modality', close => {
      const sel = h('select', { id: 'd-mod', name: 'mod', required: true }, modalities.map(m => h('option', { value: m }, m)));
      return h('form', { onsubmit: e => { e.preventDefault(); close(sel.value); } },
        h('div', { class: 'field' }, h('label', { for: 'd-mod' }, 'Modality'), sel),
        h('div', { class: 'buttons' }, h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
          h('button', { type: 'submit', class: 'primary' }, 'Send')));
    });
    if (!target) return;
    try {
      const r = await api(`modalities/${encodeURIComponent(target)}/store`, { method: 'POST', body: { Resources: [id], Asynchronous: true } });
      jobCard(activity, `Send to ${target}`, r.ID, (job, extra) => extra.replaceChildren(`Sent ${job.Content?.InstancesCount ?? ''} instance(s).`));
    } catch (e) { toast(e.message, 'error'); }
  };

  bar.append(
    h('button', { type: 'button', class: 'primary', onclick: () => run(true) }, 'Anonymize…'),
    h('button', { type: 'button', onclick: () => run(false) }, 'Modify…'));
  const slots = {
    zip: h('span'), dicomdir: h('span'), send: h('span'), viewer: h('span'),
  };
  bar.append(slots.zip, slots.dicomdir, slots.send, slots.viewer,
    h('button', { type: 'button', class: 'danger', onclick: del }, 'Delete…'));
  const missing = 'This server does not offer it (yet)';
  slots.zip.replaceWith(slots.zip = linkButton('Download ZIP', false, '', 'Checking…'));
  hasRoute('archive', `studies/${id}/archive`).then(ok => slots.zip.replaceWith(slots.zip =
    linkButton('Download ZIP', ok, url(`studies/${id}/archive`), missing, { download: `${uid || id}.zip`, 'data-action': 'zip' })));
  hasRoute('media', `studies/${id}/media`).then(ok => slots.dicomdir.replaceWith(slots.dicomdir =
    linkButton('DICOMDIR', ok, url(`studies/${id}/media`), missing, { download: `${uid || id}-dicomdir.zip` })));
  hasRoute('modalities', 'modalities', 'GET').then(ok => ok ? api('modalities') : Promise.reject(new Error(missing))).then(list => {
    const names = Array.isArray(list) ? list : Object.keys(list || {});
    slots.send.replaceWith(slots.send = h('button', { type: 'button', disabled: !names.length,
      title: names.length ? null : 'No modality is configured (DicomModalities)', onclick: () => send(names) }, 'Send…'));
  }, () => slots.send.replaceWith(slots.send = h('button', { type: 'button', disabled: true, title: missing }, 'Send…')));
  hasRoute('ohif', 'ohif/', 'GET').then(ok => slots.viewer.replaceWith(slots.viewer =
    linkButton('Open viewer', ok, url(`ohif/viewer?StudyInstanceUIDs=${encodeURIComponent(uid)}`), missing, { target: '_blank', rel: 'noopener' })));
  return bar;
}
