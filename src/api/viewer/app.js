// The viewer's entry point: wires the views (tail.js, query.js, errors.js,
// detail.js) to the filter bar, the URL fragment, the token dialog and the
// keyboard.
//
// The URL fragment is the shareable state of the page: the view, the
// filters, the query window and the error-groups window. It is rewritten
// with history.replaceState on every change (no history spam, no reload) and
// read back on load and on `hashchange`. The token is never part of it.

import { FILTER_KEYS, token } from './api.js';
import { Detail } from './detail.js';
import { Errors } from './errors.js';
import { escapeRegex, signatureRegex } from './format.js';
import { localInput, Query, WINDOWS } from './query.js';
import { Tail } from './tail.js';

const $ = (sel) => document.querySelector(sel);
const VIEWS = ['tail', 'query', 'errors'];
/** The filter-bar fields, as they appear in the fragment. */
const FORM_KEYS = ['tier', 'lvl', 'projectId', 'buildId', 'userId', 'reqId', 'src', 'instanceId', 'grep', 're'];

const filterForm = $('#filters');
let view = 'tail';

// ---- status line -----------------------------------------------------------

function setStatus(text, kind) {
  const el = $('#conn');
  el.textContent = text;
  el.dataset.kind = kind;
}

// ---- token -------------------------------------------------------------------

let asking = null; // one dialog at a time; every caller awaits the same answer

/** Ask for the token; resolves once the user has answered. */
function askToken(reason) {
  if (asking) return asking;
  const dialog = $('#token-dialog');
  const form = $('#token-form');
  const input = $('#token-input');
  $('#token-reason').textContent = reason;
  input.value = '';
  asking = new Promise((resolve) => {
    const done = (value) => {
      token.set(value);
      form.removeEventListener('submit', onSubmit);
      $('#token-none').removeEventListener('click', onNone);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      asking = null;
      resolve();
    };
    const onSubmit = (e) => {
      e.preventDefault();
      if (input.value.trim() !== '') done(input.value.trim());
    };
    const onNone = () => done('');
    // Escape would leave the page with no way to connect; keep asking.
    const onCancel = (e) => e.preventDefault();
    form.addEventListener('submit', onSubmit);
    $('#token-none').addEventListener('click', onNone);
    dialog.addEventListener('cancel', onCancel);
  });
  dialog.showModal();
  input.focus();
  return asking;
}

// ---- filters -----------------------------------------------------------------

function formFilters() {
  const f = filterForm.elements;
  const out = {};
  for (const k of FORM_KEYS) {
    if (k === 're') out.re = f.re.checked ? '1' : '';
    else out[k] = f[k].value.trim();
  }
  return out;
}

function setFormFilters(s) {
  const f = filterForm.elements;
  for (const k of FORM_KEYS) {
    if (k === 're') f.re.checked = s.re === '1';
    else f[k].value = s[k] ?? '';
  }
  if (f.tier.selectedIndex < 0) f.tier.value = '';
  if (f.lvl.selectedIndex < 0) f.lvl.value = '';
}

/** The filter bar as API query parameters (SPEC §10 names). */
function apiFilters() {
  const s = formFilters();
  const out = {};
  for (const k of FILTER_KEYS) if (s[k]) out[k] = s[k];
  if (out.grep && s.re !== '1') out.grep = escapeRegex(out.grep);
  return out;
}

// ---- fragment ------------------------------------------------------------------

function saveFragment() {
  const q = new URLSearchParams();
  q.set('view', view);
  const all = { ...formFilters(), ...query.state(), ...errors.state() };
  for (const [k, v] of Object.entries(all)) if (v) q.set(k, v);
  const hash = `#${q.toString()}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

function readFragment() {
  const q = new URLSearchParams(location.hash.slice(1));
  return Object.fromEntries(q.entries());
}

/** Put the page in the state the fragment describes. */
function applyFragment({ run }) {
  const s = readFragment();
  setFormFilters(s);
  query.setState(s);
  errors.setState(s);
  setView(VIEWS.includes(s.view) ? s.view : 'tail', { save: false, run });
}

// ---- views ---------------------------------------------------------------------

/** Show view `v`; `run` loads its data when it has none yet (query) or always (errors). */
function setView(v, { save = true, run = true } = {}) {
  view = v;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.dataset.view === v;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
  }
  for (const name of VIEWS) $(`#panel-${name}`).hidden = name !== v;
  document.body.dataset.view = v;
  if (v === 'tail') tail.list.schedule();
  const connected = token.get() !== null;
  if (v === 'query') {
    query.list.schedule();
    if (run && !query.ran && connected) query.run();
  }
  if (v === 'errors' && run && connected) errors.load();
  if (save) saveFragment();
}

// ---- wiring --------------------------------------------------------------------

const detail = new Detail();
const onOpen = (ev) => detail.open(ev);

const tail = new Tail({
  onOpen,
  askToken,
  setStatus,
  onRejected: (msg) => showFilterError(`The agent refused these filters: ${msg}`),
});

const query = new Query({ onOpen, askToken, filters: apiFilters, onChange: saveFragment });

const errors = new Errors({
  onOpen,
  askToken,
  tier: () => formFilters().tier,
  onChange: saveFragment,
  onDrill: (group, since) => drill(group, since),
});

/** From an error group to its events: a query for exactly that group. */
function drill(group, since) {
  const f = filterForm.elements;
  const sig = String(group.signature ?? group.sample?.msg ?? '');
  setFormFilters({ ...formFilters(), lvl: 'error', grep: signatureRegex(sig), re: '1', tier: group.tier ?? group.sample?.tier ?? formFilters().tier });
  f.grep.focus({ preventScroll: true });
  f.grep.blur();
  const now = Date.now();
  if (since in WINDOWS) {
    query.setState({ window: since });
  } else {
    const ms = since === '7d' ? 7 * 86_400_000 : 86_400_000;
    query.setState({ window: 'custom', from: localInput(now - ms), to: localInput(now + 60_000) });
  }
  filtersChanged({ rerun: false });
  setView('query', { run: false });
  query.run();
}

function showFilterError(text) {
  const el = $('#filter-error');
  el.textContent = text;
  el.hidden = !text;
}

let filterTimer = 0;
let lastApplied = '';

/** Apply the filter bar to every view that uses it. */
function filtersChanged({ rerun = true } = {}) {
  clearTimeout(filterTimer);
  saveFragment();
  const params = apiFilters();
  const key = JSON.stringify(params);
  if (key === lastApplied) return;
  lastApplied = key;
  showFilterError('');
  if (token.get() === null) return;
  tail.start(params);
  if (rerun && view === 'query' && query.ran) query.run();
  if (rerun && view === 'errors') errors.load();
}

// A form with several text fields and no submit button is not submitted by
// Enter, so Enter in any field applies the filters at once.
filterForm.addEventListener('submit', (e) => e.preventDefault());
filterForm.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && e.target.tagName === 'INPUT') {
    e.preventDefault();
    filtersChanged();
  }
});
filterForm.addEventListener('change', () => filtersChanged());
filterForm.addEventListener('input', (e) => {
  if (e.target.tagName !== 'INPUT' || e.target.type === 'checkbox') return;
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => filtersChanged(), 500);
});
$('#clear-filters').addEventListener('click', () => {
  setFormFilters({});
  filtersChanged();
});

for (const tab of document.querySelectorAll('[role=tab]')) {
  tab.addEventListener('click', () => setView(tab.dataset.view));
  tab.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = VIEWS.indexOf(view) + (e.key === 'ArrowRight' ? 1 : VIEWS.length - 1);
    setView(VIEWS[i % VIEWS.length]);
    $(`#tab-${view}`).focus();
  });
}

$('#forget-token').addEventListener('click', async () => {
  token.clear();
  tail.stop();
  setStatus('not connected', 'wait');
  await askToken('Enter the token for this agent.');
  lastApplied = '';
  filtersChanged();
});

window.addEventListener('hashchange', () => {
  applyFragment({ run: true });
  filtersChanged();
});

// ---- keyboard ------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName));
}

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if ($('#token-dialog').open) return;
  if (e.key === '/' && !typing(e.target)) {
    e.preventDefault();
    $('#grep').focus();
    $('#grep').select();
  } else if (e.key === ' ' && !typing(e.target) && e.target.tagName !== 'BUTTON' && view === 'tail') {
    e.preventDefault();
    tail.togglePause();
  } else if (e.key === 'Escape' && detail.isOpen) {
    detail.close();
  } else if (e.key === 'Escape' && e.target === $('#grep')) {
    e.target.blur();
  }
});

// ---- start ---------------------------------------------------------------------

async function start() {
  applyFragment({ run: false });
  if (token.get() === null) {
    setStatus('not connected', 'wait');
    await askToken("The API needs the token from [api] token in the agent's config. It is kept for this tab only.");
  }
  lastApplied = '';
  filtersChanged({ rerun: false });
  if (view === 'query') query.run();
  if (view === 'errors') errors.load();
}

start();
