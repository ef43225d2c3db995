/**
 * Browser test of the viewer and the HTML report with Debian's Chromium (playwright-core). Skips, saying why, only
 * when /usr/bin/chromium is absent. Screenshots go to test-output/ (gitignored).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { buildReport, startViewer, writeReport } from '../src/report/index.js';
import { baseEpisodes, ftEpisodes, ONE_OF_EACH, CLEAN_EPISODE, writeRunFolder } from './report-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian chromium (apt-get install -y chromium) to run the browser test`;
const OUT = resolve('test-output');

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-browser-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('viewer in Chromium: grid, filters, trajectory; report renders offline', { skip, timeout: 60_000 }, async () => {
  const { chromium } = await import('playwright-core');
  mkdirSync(OUT, { recursive: true });
  const baseDir = writeRunFolder(join(tmp, 'base'), 'base-model', baseEpisodes());
  const ftDir = writeRunFolder(join(tmp, 'finetuned'), 'finetuned-model', ftEpisodes());
  const oneDir = writeRunFolder(join(tmp, 'behaviours'), 'scripted-behaviours', [...Object.values(ONE_OF_EACH).map((x) => x.episode), CLEAN_EPISODE]);
  const viewer = await startViewer([baseDir, ftDir], { port: 0 });
  const viewer2 = await startViewer([oneDir], { port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(5000);
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(viewer.url) && !r.url().startsWith(viewer2.url) && !r.url().startsWith('file://')) foreign.push(r.url());
    });
    await page.goto(viewer.url);
    await page.waitForSelector('.cell[data-task]');
    assert.equal(await page.locator('.cell[data-task]').count(), 24);
    assert.equal(await page.locator('.cell.ok').count(), 16);
    assert.equal(await page.locator('.cell.bad').count(), 8);
    assert.equal(await page.locator('#count').textContent(), '24 of 24 task results match');
    assert.deepEqual(await page.locator('.card .big').allTextContents(), ['50.0%', '83.3%']);
    await page.screenshot({ path: join(OUT, 'viewer-grid.png'), fullPage: true });

    await page.selectOption('#f-family', 'task1');
    assert.equal(await page.locator('#count').textContent(), '8 of 24 task results match');
    assert.equal(await page.locator('.famrow[data-family="task2"]').first().isVisible(), false);
    await page.selectOption('#f-behaviour', 'fence');
    assert.equal(await page.locator('#count').textContent(), '2 of 24 task results match');
    const shown = await page.locator('.cell[data-task]:not(.dim)').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-run')}:${e.getAttribute('data-task')}`));
    assert.deepEqual(shown, ['0:task1_3', '0:task1_4']);
    await page.selectOption('#f-behaviour', '');
    await page.selectOption('#f-verdict', 'incorrect');
    assert.equal(await page.locator('#count').textContent(), '2 of 24 task results match');
    await page.selectOption('#f-family', '');
    await page.selectOption('#f-status', 'agent invalid action');
    assert.equal(await page.locator('#count').textContent(), '7 of 24 task results match');
    await page.screenshot({ path: join(OUT, 'viewer-filtered.png'), fullPage: true });

    // trajectory: both runs side by side
    await page.selectOption('#f-status', '');
    await page.click('.cell[data-run="0"][data-task="task7_4"]');
    await page.waitForSelector('.traj[data-loaded="true"]');
    assert.equal(await page.locator('#task-title').textContent(), 'task7_4 (task7)');
    const cols = page.locator('.traj .col');
    assert.equal(await cols.count(), 2);
    assert.deepEqual(await page.locator('.verdict h3 .pill:first-of-type').allTextContents(), ['incorrect', 'correct']);
    const details = cols.nth(0).locator('details.get-response');
    assert.equal(await details.evaluate((d) => (d as HTMLDetailsElement).open), false);
    await details.locator('summary').click();
    assert.equal(await details.evaluate((d) => (d as HTMLDetailsElement).open), true);
    const body = await details.locator('pre').textContent();
    assert.match(body ?? '', /^\{\n {2}"resourceType": "Bundle",/);
    assert.match(await cols.nth(0).locator('.item[data-kind="invalid"]').textContent() ?? '', /```json\nFINISH\(\[104\]\)\n```/);
    assert.equal(await cols.nth(0).locator('.item[data-kind="invalid"] .pill.beh').textContent(), 'Markdown fence');
    await page.screenshot({ path: join(OUT, 'viewer-trajectory.png'), fullPage: true });

    // a POST trajectory with the grader's checks
    await page.goto(`${viewer2.url}#/task/task8_1`);
    await page.waitForSelector('.traj[data-loaded="true"]');
    const post = page.locator('.item[data-kind="POST"]');
    assert.match(await post.locator('.kv code').first().textContent() ?? '', /fhir\/\/ServiceRequest$/);
    assert.match(await post.locator('pre.post-payload').textContent() ?? '', /"reference": "Patient\/S1234567"/);
    assert.equal(await post.locator('.pill.beh').textContent(), 'Wrong POST URL');
    assert.equal(await post.locator('tr[data-check="url"] td.fail').count(), 1);
    assert.match(await post.locator('tr[data-check="url"]').textContent() ?? '', /http:\/\/localhost:8080\/fhir\/ServiceRequest/);
    await page.screenshot({ path: join(OUT, 'viewer-post.png'), fullPage: true });

    // the HTML report opens from disk with no network
    const data = buildReport([baseDir, ftDir]);
    const written = await writeReport(data, join(OUT, 'report'));
    await page.goto(pathToFileURL(written.files.html).href);
    assert.equal(await page.locator('svg.marks').count(), 3);
    assert.match(await page.locator('h1').textContent() ?? '', /ehrgym report/);
    await page.screenshot({ path: join(OUT, 'report.png'), fullPage: true });
    assert.deepEqual(foreign, []);
  } finally {
    await browser.close();
    await viewer.close();
    await viewer2.close();
  }
});
