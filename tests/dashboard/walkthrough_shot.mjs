// After the README walk-through (tests/app/readme_walkthrough.py, embedded mode): the
// dashboard, opened in Debian's headless Chromium, lists the walk-through's runs, and a run of
// the approval engine shows its steps. Saves dashboard-walkthrough-{runs,run}.png in OUT_DIR.
//
//   node walkthrough_shot.mjs EXECUTOR_BASE_URL KEY OUT_DIR FUNCTION_ID...
//
// Each FUNCTION_ID must appear among the listed runs. Exits 77 (skipped) only when
// /usr/bin/chromium is missing.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const [base, key, outDir, ...functions] = process.argv.slice(2);
const chromiumPath = '/usr/bin/chromium';
if (!existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} is missing (scripts/setup installs Debian's chromium)`);
  process.exit(77);
}
const { chromium } = await import('playwright-core');
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: chromiumPath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const ready = (view) => page.waitForSelector(`body[data-ready="${view}"]`);
  await page.goto(`${base}/_dashboard/`);
  await ready('login');
  await page.fill('#key', key);
  await page.click('#login-form button[type=submit]');
  await ready('runs');
  // The walk-through's functions, each with at least one run in the list.
  for (const fn of functions) {
    await page.waitForSelector(`#runs tbody tr:has-text("${fn}")`, { timeout: 15000 });
  }
  const rows = await page.$$eval('#runs tbody tr', (trs) => trs.length);
  assert.ok(rows >= functions.length, `only ${rows} runs listed`);
  await page.screenshot({ path: path.join(outDir, 'dashboard-walkthrough-runs.png'), fullPage: false });

  // An approval instance's run: its steps (load, visits, parks) are on its page.
  await page.click(`#runs tbody tr:has-text("approvals-instance") a`);
  await ready('run');
  const steps = await page.$$eval('.step', (list) => list.map((s) => s.textContent));
  assert.ok(steps.some((s) => s.includes('load')), `no load step among ${steps.length} steps`);
  assert.ok(steps.some((s) => s.includes('visit:')), 'no node visit among the steps');
  await page.screenshot({ path: path.join(outDir, 'dashboard-walkthrough-run.png'), fullPage: false });
  assert.deepEqual(problems, []);
  console.log(`ok   the dashboard lists the walk-through's runs (${rows}) and a run's steps`);
} finally {
  await browser.close();
}
