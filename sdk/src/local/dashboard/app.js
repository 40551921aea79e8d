// The run dashboard: plain DOM, no framework. Every value from the server goes in through
// textContent (see el()), never as HTML.

const main = document.getElementById('main');
const api = './api/';
let timer = null;
let busy = false;
let lastBody = '';
let functionsCache = [];

// ---- small helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'style') Object.assign(node.style, value);  // CSSOM: allowed by the CSP
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class Unauthorized extends Error {}

async function call(path, options = {}) {
  const init = { cache: 'no-store', credentials: 'same-origin', headers: {} };
  if (options.body !== undefined) {
    init.method = 'POST';
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-Dashboard'] = '1';
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(api + path, init);
  const text = await response.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { error: text }; }
  if (response.status === 401 && !options.login) throw new Unauthorized();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return { body, text };
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
let serverOffset = 0;  // executor clock minus browser clock (the executor may run a test clock)

function ago(ms) {
  const seconds = Math.round((ms - (Date.now() + serverOffset)) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

function when(ms) {
  if (!ms) return el('span', { class: 'muted', text: '—' });
  const iso = new Date(ms).toISOString();
  return el('time', { datetime: iso, title: iso.replace('T', ' ').replace('Z', ' UTC'), dataset: { ms } }, ago(ms));
}

function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function chip(status) {
  return el('span', { class: `chip ${status}`, text: status });
}

function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id;
}

// Pretty JSON as coloured spans; long values fold.
function jsonView(value, label) {
  const pre = el('pre', { class: 'json' });
  const put = (v, indent) => {
    const pad = '  '.repeat(indent);
    if (v === null || typeof v === 'boolean') pre.append(el('span', { class: 'j-lit', text: String(v) }));
    else if (typeof v === 'number') pre.append(el('span', { class: 'j-num', text: String(v) }));
    else if (typeof v === 'string') pre.append(el('span', { class: 'j-str', text: JSON.stringify(v) }));
    else if (Array.isArray(v)) {
      if (!v.length) { pre.append('[]'); return; }
      pre.append('[\n');
      v.forEach((item, i) => { pre.append(pad + '  '); put(item, indent + 1); pre.append(i + 1 < v.length ? ',\n' : '\n'); });
      pre.append(pad + ']');
    } else {
      const keys = Object.keys(v);
      if (!keys.length) { pre.append('{}'); return; }
      pre.append('{\n');
      keys.forEach((k, i) => {
        pre.append(pad + '  ', el('span', { class: 'j-key', text: JSON.stringify(k) }), ': ');
        put(v[k], indent + 1);
        pre.append(i + 1 < keys.length ? ',\n' : '\n');
      });
      pre.append(pad + '}');
    }
  };
  put(value, 0);
  const text = JSON.stringify(value, null, 2) ?? 'null';
  const copy = el('button', { type: 'button', class: 'quiet copy', text: 'Copy', onclick: (e) => {
    e.preventDefault();
    navigator.clipboard?.writeText(text).then(() => { copy.textContent = 'Copied'; }, () => {});
  } });
  const lines = text.split('\n').length;
  if (lines > 20) {
    const size = Array.isArray(value) ? `${value.length} items` : value && typeof value === 'object' ? `${Object.keys(value).length} keys` : `${lines} lines`;
    return el('details', { dataset: { fold: label || '' } }, el('summary', {}, `${label || 'JSON'} (${size})`, copy), pre);
  }
  return el('div', {}, label ? el('div', { class: 'muted' }, label, copy) : null, pre);
}

// ---- the URL is the state ------------------------------------------------------------------

function params() { return new URLSearchParams(location.search); }

function go(changes, push = true) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === '' || v === null || v === undefined) p.delete(k); else p.set(k, v);
  }
  const url = `${location.pathname}${p.toString() ? `?${p}` : ''}`;
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  lastBody = '';
  load();
}

function link(text, changes, attrs = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(changes)) if (v) p.set(k, v);
  return el('a', { href: `./?${p}`, ...attrs, onclick: (e) => {
    if (e.ctrlKey || e.metaKey || e.button) return;
    e.preventDefault();
    history.pushState(null, '', `./?${p}`);
    lastBody = '';
    load();
  } }, text);
}

window.addEventListener('popstate', () => { lastBody = ''; load(); });

// ---- pages ---------------------------------------------------------------------------------

function showLogin(message) {
  stopTimer();
  for (const id of ['nav', 'refresh-box', 'send-open', 'logout']) document.getElementById(id).hidden = true;
  const input = el('input', { type: 'password', id: 'key', autocomplete: 'current-password', required: true });
  const error = el('p', { class: 'form-error', role: 'alert', text: message || '' });
  const form = el('form', { class: 'panel login', id: 'login-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await call('login', { body: { key: input.value }, login: true });
      input.value = '';
      lastBody = '';
      await load();
    } catch (err) {
      error.textContent = err.message === 'wrong key' ? 'That key is not the executor\'s API key.' : err.message;
    }
  } },
  el('h1', { text: 'Sign in' }),
  el('p', { class: 'muted', text: 'This executor has an API key (its signing key). Enter it to see its runs. The key is checked by the executor and never stored in this page.' }),
  el('label', {}, 'API key', input), error,
  el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Sign in' })));
  main.replaceChildren(form);
  document.body.dataset.ready = 'login';
  input.focus();
}

function header(view) {
  for (const id of ['nav', 'refresh-box', 'send-open']) document.getElementById(id).hidden = false;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === view);
}

async function runsPage() {
  const p = params();
  const size = Number(p.get('size') || 25);
  const page = Number(p.get('page') || 1);
  const q = new URLSearchParams();
  for (const [from, to] of [['fn', 'function'], ['status', 'status'], ['event', 'event'], ['q', 'q']]) {
    if (p.get(from)) q.set(to, p.get(from));
  }
  const since = Number(p.get('since') || 0);
  if (since) q.set('from', String(Date.now() + serverOffset - since));
  q.set('offset', String((page - 1) * size));
  q.set('limit', String(size));
  const [{ body, text }, fns] = await Promise.all([call(`runs?${q}`), functionsCache.length ? null : call('functions')]);
  if (fns) functionsCache = fns.body.functions;
  serverOffset = body.now - Date.now();
  const key = text.replace(/"now":\d+/, '') + p.toString();
  if (key === lastBody) return false;
  lastBody = key;

  const status = p.get('status') || '';
  const tabs = el('div', { class: 'tabs', role: 'tablist' },
    ['', 'Running', 'Waiting', 'Completed', 'Failed', 'Cancelled'].map((s) => {
      const total = s ? body.counts[s] : Object.entries(body.counts).filter(([k]) => k !== 'Running').reduce((a, [, v]) => a + v, 0);
      return el('button', { type: 'button', role: 'tab', class: s === status ? 'active' : '', 'aria-selected': s === status ? 'true' : 'false', dataset: { status: s || 'All' },
        onclick: () => go({ status: s, page: '' }) }, s || 'All', el('span', { class: 'count', text: total }));
    }));
  const fnSelect = el('select', { id: 'filter-fn', 'aria-label': 'Function', onchange: (e) => go({ fn: e.target.value, page: '' }) },
    el('option', { value: '', text: 'All functions' }),
    functionsCache.map((f) => el('option', { value: f.id, text: f.name || f.id, selected: f.id === p.get('fn') })));
  const eventInput = el('input', { id: 'filter-event', type: 'search', placeholder: 'Event name', value: p.get('event') || '',
    onchange: (e) => go({ event: e.target.value.trim(), page: '' }) });
  const search = el('input', { id: 'filter-q', type: 'search', placeholder: 'Run ID or event ID', value: p.get('q') || '',
    onchange: (e) => go({ q: e.target.value.trim(), page: '' }) });
  const range = el('select', { id: 'filter-time', 'aria-label': 'Started', onchange: (e) => go({ since: e.target.value, page: '' }) },
    [['', 'Any time'], ['900000', 'Last 15 min'], ['3600000', 'Last hour'], ['86400000', 'Last 24 h'], ['604800000', 'Last 7 days']]
      .map(([v, t]) => el('option', { value: v, text: t, selected: v === (p.get('since') || '') })));
  const sizeSelect = el('select', { 'aria-label': 'Page size', onchange: (e) => go({ size: e.target.value, page: '' }) },
    [25, 50, 100, 200].map((n) => el('option', { value: n, text: `${n} a page`, selected: n === size })));

  const rows = body.runs.map((run) => el('tr', { dataset: { run: run.run_id, status: run.status } },
    el('td', {}, chip(run.status)),
    el('td', { class: 'mono' }, link(shortId(run.run_id), { run: run.run_id }, { title: run.run_id, class: 'run-link' })),
    el('td', {}, link(run.function_id, { fn: run.function_id })),
    el('td', { class: 'mono' }, run.event_name),
    el('td', {}, when(run.started_at)),
    el('td', {}, run.ended_at ? duration(run.ended_at - run.started_at) : el('span', { class: 'muted' }, 'running')),
    el('td', {}, String(run.steps), run.retries ? el('span', { class: 'muted', text: ` (${run.retries} retr${run.retries === 1 ? 'y' : 'ies'})` }) : null),
    el('td', { class: 'err' }, run.error)));
  const table = body.runs.length
    ? el('table', { id: 'runs' }, el('thead', {}, el('tr', {}, ['Status', 'Run', 'Function', 'Event', 'Started', 'Duration', 'Steps', 'Error'].map((h) => el('th', { text: h })))), el('tbody', {}, rows))
    : el('div', { class: 'panel empty', id: 'runs-empty', text: 'No runs match. Send an event to start one.' });
  const first = body.total ? body.offset + 1 : 0;
  const last = body.offset + body.runs.length;
  const pager = el('div', { class: 'pager' },
    el('button', { type: 'button', class: 'quiet', disabled: page <= 1, text: '← Newer', onclick: () => go({ page: page - 1 }) }),
    el('span', { id: 'page-info', text: `${first}–${last} of ${body.total}` }),
    el('button', { type: 'button', class: 'quiet', disabled: last >= body.total, text: 'Older →', onclick: () => go({ page: page + 1 }) }));
  main.replaceChildren(el('h1', { text: 'Runs' }), el('div', { class: 'filters' }, tabs),
    el('div', { class: 'filters' }, fnSelect, eventInput, search, range, sizeSelect), table, pager);
  return true;
}

const stepIcons = { StepRun: ['ok', '✓'], Sleep: ['wait', 'z'], Resumed: ['ok', '⚑'], TimedOut: ['wait', '◷'],
  InvokeResult: ['ok', '↩'], StepError: ['retry', '↻'], StepFailed: ['bad', '✕'], InvokeTimedOut: ['bad', '◷'], InvokeFunction: ['bad', '✕'], CallError: ['retry', '↻'] };

function timeline(run) {
  const span = Math.max(1, (run.ended_at || Date.now() + serverOffset) - run.started_at);
  const items = run.history.map((step) => {
    const [kind, icon] = stepIcons[step.op] || ['ok', '•'];
    const took = step.ended_at && step.started_at ? step.ended_at - step.started_at : null;
    const label = step.op === 'StepError' || step.op === 'CallError' ? `${step.op}, retried` : step.op;
    const body = el('div', {},
      el('div', {}, el('span', { class: 'name', text: step.name || step.id }), el('span', { class: 'op', text: label }),
        el('span', { class: 'op', text: `attempt ${step.attempt + 1}` })),
      took !== null ? el('div', { class: 'bar', style: { width: `${Math.min(100, Math.max(0.5, 100 * took / span)).toFixed(2)}%` } }) : null,
      step.error !== null && step.error !== undefined ? jsonView(step.error, 'Error') : null,
      step.data !== null && step.data !== undefined ? jsonView(step.data, step.op === 'Resumed' ? 'Event' : 'Output') : null);
    return el('li', { class: `step ${kind}`, dataset: { op: step.op } }, el('div', { class: 'icon', 'aria-hidden': 'true', text: icon }), body,
      el('div', { class: 'when' }, el('div', { class: 'duration', text: duration(took) }), step.started_at ? when(step.started_at) : null));
  });
  const pending = run.waits.map((w) => {
    const what = w.op === 'Sleep' ? 'sleeping' : w.op === 'WaitForEvent' ? `waiting for ${w.event}${w.if ? ` if ${w.if}` : ''}` : `waiting for ${w.event || 'the invoked run'}`;
    return el('li', { class: 'step wait', dataset: { op: w.op, pending: '1' } }, el('div', { class: 'icon', 'aria-hidden': 'true', text: '…' }),
      el('div', {}, el('div', {}, el('span', { class: 'name', text: w.name || w.id }), el('span', { class: 'op', text: w.op })),
        el('div', { class: 'muted', text: what })),
      el('div', { class: 'when' }, w.until ? el('div', {}, w.op === 'Sleep' ? 'until ' : 'times out ', when(w.until)) : null, el('div', {}, 'since ', when(w.started_at))));
  });
  if (!items.length && !pending.length) return el('div', { class: 'empty', text: 'No steps yet.' });
  return el('ol', { class: 'timeline', id: 'timeline' }, items, pending);
}

async function runPage(id) {
  const { body, text } = await call(`runs/${encodeURIComponent(id)}`);
  serverOffset = body.now - Date.now();
  const key = text.replace(/"now":\d+/, '');
  if (key === lastBody) return false;
  lastBody = key;
  const run = body.run;
  const open = new Set([...main.querySelectorAll('details[open]')].map((d) => d.dataset.fold));
  const note = el('div', { id: 'action-note' });
  const act = async (button, path, then) => {
    button.disabled = true;
    try { const r = await call(`runs/${encodeURIComponent(run.run_id)}/${path}`, { body: {} }); then(r.body); }
    catch (err) { if (err instanceof Unauthorized) { showLogin(); return; } note.replaceChildren(el('div', { class: 'notice bad', text: err.message })); button.disabled = false; }
  };
  const rerun = el('button', { type: 'button', id: 'rerun', text: 'Rerun from the start', onclick: () => act(rerun, 'rerun', (r) => go({ run: r.run_id })) });
  const cancel = run.ended_at ? null : el('button', { type: 'button', id: 'cancel', class: 'danger', text: 'Cancel run', onclick: () => act(cancel, 'cancel', () => { lastBody = ''; load(); }) });
  const ended = run.ended_at ? run.ended_at - run.started_at : null;
  const facts = el('dl', { class: 'kv' },
    el('dt', { text: 'Function' }), el('dd', {}, link(run.function_id, { fn: run.function_id })),
    el('dt', { text: 'Run ID' }), el('dd', { class: 'mono', id: 'run-id' }, run.run_id),
    el('dt', { text: 'Event' }), el('dd', { class: 'mono' }, link(run.event_name, { view: 'events', name: run.event_name }), run.batch_size > 1 ? ` (batch of ${run.batch_size})` : ''),
    el('dt', { text: 'Started' }), el('dd', {}, when(run.started_at)),
    el('dt', { text: 'Ended' }), el('dd', {}, run.ended_at ? when(run.ended_at) : el('span', { class: 'muted', text: 'not yet' })),
    el('dt', { text: 'Duration' }), el('dd', { id: 'run-duration' }, ended !== null ? duration(ended) : `${duration(Date.now() + serverOffset - run.started_at)} so far`),
    el('dt', { text: 'Calls' }), el('dd', {}, `${run.calls} to the app, ${run.steps} steps${run.retries ? `, ${run.retries} retried` : ''}`));
  const outcome = run.status === 'Completed' ? jsonView(run.output, 'Output')
    : run.status === 'Failed' ? jsonView(run.run_error, 'Error')
    : el('p', { class: 'muted', text: run.status === 'Cancelled' ? 'Cancelled before it finished.' : 'No output yet.' });
  main.replaceChildren(
    el('div', { class: 'run-head' }, link('← Runs', {}), chip(run.status), el('h1', { text: run.function_id }), el('span', { class: 'actions' }, rerun, cancel)),
    note,
    el('div', { class: 'grid2' }, el('section', { class: 'panel' }, el('h2', { text: 'Run' }), facts),
      el('section', { class: 'panel', id: 'outcome' }, el('h2', { text: 'Result' }), outcome)),
    el('section', { class: 'panel' }, el('h2', { text: 'Steps' }), timeline(run)),
    el('section', { class: 'panel', id: 'event' }, el('h2', { text: 'Event' }), jsonView(run.event, 'Event payload')));
  for (const d of main.querySelectorAll('details')) if (open.has(d.dataset.fold)) d.open = true;
  return true;
}

function triggerText(t) {
  if (t.cron) return `cron ${t.cron}`;
  return t.expression ? `${t.event} if ${t.expression}` : t.event;
}

async function functionsPage() {
  const { body, text } = await call('functions');
  functionsCache = body.functions;
  if (text === lastBody) return false;
  lastBody = text;
  const rows = body.functions.map((f) => {
    const config = { ...f.config };
    const attempts = Object.values(f.config.steps || {}).map((st) => st?.retries?.attempts).find((n) => n !== undefined);
    delete config.steps; delete config.triggers; delete config.id; delete config.name;
    const settings = Object.keys(config).length ? jsonView(config, 'Config') : el('span', { class: 'muted', text: 'defaults' });
    return el('tr', { dataset: { fn: f.id } },
      el('td', {}, el('div', { class: 'name', text: f.name || f.id }), el('div', { class: 'mono muted', text: f.id })),
      el('td', { class: 'mono' }, (f.config.triggers || []).map((t) => el('div', { text: triggerText(t) }))),
      el('td', {}, Object.entries(f.runs).map(([s, n]) => el('span', {}, link(el('span', { class: `chip ${s}`, text: `${s} ${n}` }), { fn: f.id, status: s }), ' ')),
        link('all runs', { fn: f.id })),
      el('td', {}, attempts === undefined ? el('span', { class: 'muted', text: 'default' }) : `${attempts}`),
      el('td', {}, settings));
  });
  main.replaceChildren(el('h1', { text: 'Functions' }), rows.length
    ? el('table', { id: 'functions' }, el('thead', {}, el('tr', {}, ['Function', 'Triggers', 'Runs', 'Retries', 'Flow control'].map((h) => el('th', { text: h })))), el('tbody', {}, rows))
    : el('div', { class: 'panel empty', text: 'No functions synced yet.' }));
  return true;
}

async function eventsPage() {
  const p = params();
  const page = Number(p.get('page') || 1);
  const size = 25;
  const q = new URLSearchParams({ offset: String((page - 1) * size), limit: String(size) });
  if (p.get('name')) q.set('name', p.get('name'));
  const { body, text } = await call(`events?${q}`);
  serverOffset = body.now - Date.now();
  const key = text.replace(/"now":\d+/, '') + p.toString();
  if (key === lastBody) return false;
  lastBody = key;
  const filter = el('input', { type: 'search', id: 'filter-name', placeholder: 'Event name', value: p.get('name') || '', onchange: (e) => go({ name: e.target.value.trim(), page: '' }) });
  const rows = body.events.map((e) => el('tr', { dataset: { event: e.id } },
    el('td', { class: 'mono' }, el('div', { text: e.name }), el('div', { class: 'muted', text: e.id })),
    el('td', {}, when(e.received_at)),
    el('td', { class: 'mono' }, e.run_ids.length ? e.run_ids.map((id) => el('div', {}, link(shortId(id), { run: id }, { title: id }))) : el('span', { class: 'muted', text: 'no run' })),
    el('td', {}, jsonView(e.event.data, 'Data'))));
  const last = body.offset + body.events.length;
  main.replaceChildren(el('h1', { text: 'Events' }), el('div', { class: 'filters' }, filter),
    rows.length ? el('table', { id: 'events' }, el('thead', {}, el('tr', {}, ['Event', 'Received', 'Runs started', 'Data'].map((h) => el('th', { text: h })))), el('tbody', {}, rows))
      : el('div', { class: 'panel empty', text: 'No events received yet (the latest 1,000 are kept).' }),
    el('div', { class: 'pager' },
      el('button', { type: 'button', class: 'quiet', disabled: page <= 1, text: '← Newer', onclick: () => go({ page: page - 1 }) }),
      el('span', { text: `${body.total ? body.offset + 1 : 0}–${last} of ${body.total}` }),
      el('button', { type: 'button', class: 'quiet', disabled: last >= body.total, text: 'Older →', onclick: () => go({ page: page + 1 }) })));
  return true;
}

// ---- load and refresh ----------------------------------------------------------------------

let again = false;  // load() was asked for while one ran (the URL may have changed meanwhile)

async function load() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const p = params();
    const view = p.get('run') ? 'run' : p.get('view') || 'runs';
    header(view === 'run' ? 'runs' : view);
    document.getElementById('logout').hidden = !loginRequired;
    if (view === 'run') await runPage(p.get('run'));
    else if (view === 'functions') await functionsPage();
    else if (view === 'events') await eventsPage();
    else await runsPage();
    for (const t of main.querySelectorAll('time[data-ms]')) t.textContent = ago(Number(t.dataset.ms));
    document.body.dataset.ready = view;
    schedule();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin();
    else { main.replaceChildren(el('div', { class: 'notice bad', id: 'load-error', text: `Could not load: ${err.message}` })); schedule(); }
  } finally {
    busy = false;
    if (again) {
      again = false;
      lastBody = '';
      load();
    }
  }
}

function stopTimer() { if (timer) clearTimeout(timer); timer = null; }

function schedule() {
  stopTimer();
  const every = Number(document.getElementById('refresh').value);
  // Not while the tab is hidden, someone types in a filter or the send dialog is open.
  const idle = () => !document.hidden && !dialog.open &&
    !(main.contains(document.activeElement) && /^(INPUT|TEXTAREA)$/.test(document.activeElement.tagName));
  if (every > 0) timer = setTimeout(() => { if (idle()) load(); else schedule(); }, every);
}

document.getElementById('refresh').addEventListener('change', (e) => {
  go({ refresh: e.target.value === '2000' ? '' : e.target.value }, false);
});

const dialog = document.getElementById('send-dialog');
document.getElementById('send-open').addEventListener('click', () => {
  document.getElementById('send-error').textContent = '';
  dialog.showModal();
});
document.getElementById('send-cancel').addEventListener('click', () => dialog.close());
document.getElementById('send-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = document.getElementById('send-name').value.trim();
  const error = document.getElementById('send-error');
  let data;
  try { data = JSON.parse(document.getElementById('send-data').value || '{}'); } catch { error.textContent = 'Data is not valid JSON.'; return; }
  if (!data || typeof data !== 'object' || Array.isArray(data)) { error.textContent = 'Data must be a JSON object.'; return; }
  try {
    await call('events', { body: { name, data } });
    dialog.close();
    go({ view: '', run: '', status: '', fn: '', q: '', page: '', event: name });
  } catch (err) {
    error.textContent = err.message;
  }
});
document.getElementById('logout').addEventListener('click', async () => {
  await call('logout', { body: {} }).catch(() => {});
  showLogin('Signed out.');
});

let loginRequired = false;
(async () => {
  const refresh = params().get('refresh');
  if (refresh) document.getElementById('refresh').value = refresh;
  try {
    const { body } = await call('session');
    loginRequired = body.login_required;
    if (!body.signed_in) { showLogin(); return; }
  } catch (err) {
    main.replaceChildren(el('div', { class: 'notice bad', text: `Could not reach the executor: ${err.message}` }));
    return;
  }
  load();
})();
