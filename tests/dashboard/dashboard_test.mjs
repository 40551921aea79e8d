// The executor's dashboard in Debian's headless Chromium (driven by playwright-core, no browser
// download): inngest-local with an API key beside the C++ conformance fixture app; runs are
// started by events, then the page is used as a person would. A screenshot of each page lands in
// OUT_DIR (dashboard-*.png).
//
//   node dashboard_test.mjs INNGEST_LOCAL FIXTURE_BINARY OUT_DIR
//
// Exits 77 (skipped) only when /usr/bin/chromium is missing (scripts/setup installs it).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';

const [inngestLocal, fixture, outDir] = process.argv.slice(2);
const chromiumPath = '/usr/bin/chromium';
if (!existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} is missing (scripts/setup installs Debian's chromium)`);
  process.exit(77);
}
const { chromium } = await import('playwright-core');
mkdirSync(outDir, { recursive: true });

const key = 'signkey-test-' + Buffer.from('a dashboard browser test key 42').toString('hex');
const eventKey = 'dash-event-key';
const started = Date.now();
const children = [];
let browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function start(name, file, args, env) {
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  for (const stream of [child.stdout, child.stderr]) stream.on('data', (d) => { child.output += d; });
  child.on('exit', (code) => { child.exited = code ?? 'signal'; });
  child.label = name;
  children.push(child);
  return child;
}

async function until(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try { last = await check(); if (last) return last; } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

function cleanup() {
  for (const child of children) if (child.exited === undefined) child.kill('SIGTERM');
}
process.on('exit', cleanup);

try {
  const executorPort = await freePort();
  const appPort = await freePort();
  const base = `http://127.0.0.1:${executorPort}`;
  start('fixture', fixture, [], {
    PORT: String(appPort), FIXTURE_APP_ID: 'dash', INNGEST_SIGNING_KEY: key,
    INNGEST_EVENT_KEY: eventKey, INNGEST_BASE_URL: base, INNGEST_DEV: '0',
  });
  const executor = start('inngest-local', inngestLocal, [
    '--port', String(executorPort), '--signing-key', key, '--event-key', eventKey,
    '-u', `http://127.0.0.1:${appPort}/api/inngest`]);
  await until('the app to sync', () => /synced \d+ functions/.test(executor.output));
  assert.ok(!executor.output.includes(key), 'the executor logged its key');

  const auth = { Authorization: `Bearer ${key}` };
  const send = async (name, data = {}) => {
    const r = await fetch(`${base}/e/${eventKey}`, { method: 'POST', body: JSON.stringify({ name, data }) });
    assert.equal(r.status, 200);
    return (await r.json()).ids[0];
  };
  const runs = async () => (await (await fetch(`${base}/v1/runs`, { headers: auth })).json());
  const runOf = async (fn) => (await runs()).filter((r) => r.function_id === `dash-${fn}`);

  await send('tests/step.test');
  await send('tests/retry.test');
  // Sleeps for an hour: still waiting whenever the test comes to cancel it, however slow the machine.
  const hourLater = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  await send('conformance/sleepuntil.test', { until: hourLater });
  await send('tests/function.test');
  const [stepRun] = await until('the step run to complete', async () => {
    const found = await runOf('test-suite-step-test');
    return found.length && found[0].status === 'Completed' && found;
  });
  const [retryRun] = await until('the retried run to complete', async () => {
    const found = await runOf('test-suite-retry-test');
    return found.length && found[0].status === 'Completed' && found;
  });
  const [sleeper] = await until('the sleeping run to sleep', async () => {
    const found = await runOf('sleep-until');
    return found.length && found[0].pending.length && found;
  });

  browser = await chromium.launch({
    executablePath: chromiumPath, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error' && !/401/.test(msg.text())) problems.push(`console: ${msg.text()}`); });
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) problems.push(`off-site request: ${request.url()}`);
  });
  const shot = async (name) => page.screenshot({ path: path.join(outDir, `dashboard-${name}.png`), fullPage: true });
  const ready = (view) => page.waitForSelector(`body[data-ready="${view}"]`);

  // Sign in: a wrong key is refused, the right one opens the runs.
  await page.goto(`${base}/_dashboard/`);
  await ready('login');
  await page.fill('#key', 'signkey-test-00');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('.form-error:has-text("not the executor")');
  await shot('login');
  await page.fill('#key', key);
  await page.click('#login-form button[type=submit]');
  await ready('runs');
  const cookies = await page.context().cookies();
  assert.equal(cookies.length, 1);
  assert.ok(cookies[0].httpOnly && cookies[0].sameSite === 'Strict' && !cookies[0].value.includes(key.slice(13)));

  // The runs the test started are listed, with their statuses.
  for (const run of [stepRun, retryRun, sleeper]) await page.waitForSelector(`tr[data-run="${run.run_id}"]`);
  assert.equal(await page.getAttribute(`tr[data-run="${stepRun.run_id}"]`, 'data-status'), 'Completed');
  assert.equal(await page.getAttribute(`tr[data-run="${sleeper.run_id}"]`, 'data-status'), 'Waiting');
  assert.match(await page.textContent(`tr[data-run="${retryRun.run_id}"]`), /retr/);
  assert.match(await page.textContent(`tr[data-run="${stepRun.run_id}"]`), /ago|now/);
  await shot('runs');

  // Filter by status: only completed runs remain.
  await page.click('.tabs button[data-status="Completed"]');
  await page.waitForURL(/status=Completed/);
  await page.waitForSelector(`tr[data-run="${sleeper.run_id}"]`, { state: 'detached' });
  const statuses = await page.$$eval('#runs tbody tr', (rows) => rows.map((r) => r.dataset.status));
  assert.ok(statuses.length >= 3 && statuses.every((s) => s === 'Completed'), `statuses ${statuses}`);
  await shot('runs-completed');

  // Open the step run: its steps, their ops and durations.
  await page.click(`tr[data-run="${stepRun.run_id}"] a.run-link`);
  await ready('run');
  await page.waitForSelector('#timeline');
  const steps = await page.$$eval('#timeline li', (items) => items.map((li) => ({
    op: li.dataset.op, name: li.querySelector('.name').textContent, took: li.querySelector('.duration')?.textContent })));
  assert.deepEqual(steps.map((s) => s.op), ['StepRun', 'Sleep', 'StepRun']);
  assert.deepEqual(steps.map((s) => s.name), ['first step', 'sleep', 'second step']);
  assert.match(steps[1].took, /^2\.\d\d s$/, `the 2 s sleep took ${steps[1].took}`);
  assert.match(steps[0].took, /ms|s$/);
  assert.match(await page.textContent('#outcome'), /"body"/);
  assert.match(await page.textContent('#event'), /tests\/step\.test/);
  assert.equal(await page.textContent('.run-head .chip'), 'Completed');
  await shot('run');

  // The retried run shows the failed attempt and the retry.
  await page.goto(`${base}/_dashboard/?run=${retryRun.run_id}`);
  await ready('run');
  await page.waitForSelector('#timeline li[data-op="StepError"]');
  assert.match(await page.textContent('#timeline li[data-op="StepError"]'), /broken/);
  assert.match(await page.textContent('#timeline li[data-op="StepRun"]'), /attempt 2/);
  // The body then threw once outside a step: that whole call was retried too.
  assert.match(await page.textContent('#timeline li[data-op="CallError"]'), /broken func/);
  assert.deepEqual(await page.$$eval('#timeline li', (items) => items.map((li) => li.dataset.op)),
                   ['StepError', 'StepRun', 'CallError']);
  await shot('run-retried');

  // Send a test event from the page: its new run shows up.
  const before = new Set((await runs()).map((r) => r.run_id));
  await page.click('#send-open');
  await page.fill('#send-name', 'tests/function.test');
  await page.fill('#send-data', '{"from": "the browser"}');
  await page.click('#send-submit');
  await page.waitForURL(/event=tests%2Ffunction\.test/);
  const fresh = await until('the sent event\'s run', async () => (await runOf('test-suite-simple-fn')).find((r) => !before.has(r.run_id)));
  assert.equal(fresh.event.data.from, 'the browser');
  await page.waitForSelector(`tr[data-run="${fresh.run_id}"]`, { timeout: 15000 });
  await shot('sent');

  // Cancel the sleeping run.
  await page.goto(`${base}/_dashboard/?run=${sleeper.run_id}`);
  await ready('run');
  assert.equal(await page.textContent('.run-head .chip'), 'Waiting');
  assert.match(await page.textContent('#timeline li[data-pending]'), /sleeping/);
  await shot('run-waiting');
  await page.click('#cancel');
  await page.waitForSelector('.run-head .chip.Cancelled');
  assert.equal((await (await fetch(`${base}/v1/runs/${sleeper.run_id}`, { headers: auth })).json()).status, 'Cancelled');
  assert.equal(await page.$('#cancel'), null);

  // Rerun the step run from the start: a new run opens.
  await page.goto(`${base}/_dashboard/?run=${stepRun.run_id}`);
  await ready('run');
  await page.click('#rerun');
  await page.waitForFunction((old) => new URLSearchParams(location.search).get('run') !== old, stepRun.run_id);
  const rerunId = new URL(page.url()).searchParams.get('run');
  assert.notEqual(rerunId, stepRun.run_id);
  await page.waitForFunction((id) => document.querySelector('#run-id')?.textContent === id, rerunId);
  assert.equal((await runOf('test-suite-step-test')).length, 2);
  await page.waitForSelector('#timeline li[data-op="StepRun"]', { timeout: 15000 });
  await shot('rerun');

  // Events with the runs they started; functions with their triggers.
  await page.click('nav a[data-view="events"]');
  await ready('events');
  await page.waitForSelector(`#events a[href*="${stepRun.run_id}"]`);
  await shot('events');
  await page.click('nav a[data-view="functions"]');
  await ready('functions');
  assert.match(await page.textContent('tr[data-fn="dash-test-suite-cancel-test"]'), /tests\/cancel\.test/);
  await shot('functions');

  assert.deepEqual(problems, []);
  console.log(`dashboard in headless Chromium ${browser.version()}: all checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${outDir}`);
  await browser.close();
  cleanup();
  process.exit(0);
} catch (err) {
  console.error(`FAILED: ${err.stack || err}`);
  for (const child of children) console.error(`--- ${child.label} output ---\n${child.output.slice(-4000)}`);
  if (browser) await browser.close().catch(() => {});
  cleanup();
  process.exit(1);
}
