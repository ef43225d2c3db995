/**
 * Browser test of the viewer and the HTML report with Debian's Chromium (playwright-core), on run folders produced
 * in the test by `ehrgym eval` (finish-empty, and the mock model showing each behaviour once). Skips, saying why,
 * only when /usr/bin/chromium is absent. Screenshots go to test-output/ (gitignored).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { buildReport, startViewer, writeReport } from '../src/report/index.js';
import { cli, runBehaviourModel, V2_TASKS } from './report-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian chromium (apt-get install -y chromium) to run the browser test`;
const OUT = resolve('test-output');

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-browser-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('viewer in Chromium: grid, filters, trajectories with grader checks; report renders offline', { skip, timeout: 240_000 }, async () => {
  const { chromium } = await import('playwright-core');
  mkdirSync(OUT, { recursive: true });
  const taskFile = join(tmp, 'tasks.json');
  const modelDir = join(tmp, 'behaviour-model');
  await runBehaviourModel(modelDir, taskFile);
  const baseDir = join(tmp, 'finish-empty');
  const ev = await cli('eval', '--agent', 'finish-empty', '--tasks', taskFile, '--out', baseDir, '--no-progress');
  assert.equal(ev.code, 0, ev.err);

  const viewer = await startViewer([baseDir, modelDir], { port: 0 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(30_000); // a loaded CI machine can take seconds over a full-page screenshot
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(viewer.url) && !r.url().startsWith('file://')) foreign.push(r.url());
    });
    await page.goto(viewer.url);
    await page.waitForSelector('.cell[data-task]');
    assert.equal(await page.locator('.cell[data-task]').count(), 28);
    assert.equal(await page.locator('.cell.ok').count(), 5); // finish-empty: task5_1, task9_1; model: task2_3, task5_1, task7_1
    assert.equal(await page.locator('.cell.bad').count(), 23);
    assert.equal(await page.locator('#count').textContent(), '28 of 28 task results match');
    assert.deepEqual(await page.locator('.card .big').allTextContents(), ['14.3%', '21.4%']);
    await page.screenshot({ path: join(OUT, 'viewer-grid.png'), fullPage: true });

    await page.selectOption('#f-family', 'task7');
    assert.equal(await page.locator('#count').textContent(), '6 of 28 task results match');
    assert.equal(await page.locator('.famrow[data-family="task2"]').first().isVisible(), false);
    await page.selectOption('#f-behaviour', 'stale-value');
    assert.equal(await page.locator('#count').textContent(), '1 of 28 task results match');
    const shown = () =>
      page.locator('.cell[data-task]:not(.dim)').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-run')}:${e.getAttribute('data-task')}`));
    assert.deepEqual(await shown(), ['1:task7_3']);
    await page.selectOption('#f-family', '');
    await page.selectOption('#f-behaviour', '');
    await page.selectOption('#f-status', 'agent invalid action');
    assert.deepEqual(await shown(), ['1:task2_1', '1:task4_1']);
    await page.selectOption('#f-status', '');
    await page.selectOption('#f-verdict', 'correct');
    assert.deepEqual((await shown()).sort(), ['0:task5_1', '0:task9_1', '1:task2_3', '1:task5_1', '1:task7_1']);
    assert.equal(await page.locator('#count').textContent(), '5 of 28 task results match');
    await page.selectOption('#f-verdict', 'differs');
    assert.deepEqual((await shown()).sort(), ['0:task2_3', '0:task7_1', '0:task9_1', '1:task2_3', '1:task7_1', '1:task9_1']);
    await page.selectOption('#f-verdict', '');
    await page.selectOption('#f-behaviour', 'wrong-post-url');
    await page.screenshot({ path: join(OUT, 'viewer-filtered.png'), fullPage: true });

    // a POST trajectory: both runs side by side, payload pretty-printed, the grader's named checks
    await page.click('.cell[data-run="1"][data-task="task8_1"]');
    await page.waitForSelector('.traj[data-loaded="true"]');
    assert.equal(await page.locator('#task-title').textContent(), 'task8_1 (task8 — orthopedic referral)');
    const cols = page.locator('.traj .col');
    assert.equal(await cols.count(), 2);
    assert.deepEqual(await page.locator('.verdict h3 .pill:first-of-type').allTextContents(), ['incorrect', 'incorrect']);
    const post = cols.nth(1).locator('.item[data-kind="POST"]');
    assert.match((await post.locator('.kv code').first().textContent()) ?? '', /^http:\/\/localhost:8080\/fhir\/\/ServiceRequest$/);
    assert.match((await post.locator('pre.post-payload').textContent()) ?? '', /"subject": \{\n {4}"reference": "Patient\/S2016972"\n {2}\}/);
    assert.equal(await post.locator('.pill.beh').textContent(), 'Wrong POST URL');
    const urlCheck = post.locator('tr[data-check="post_url"]');
    assert.equal(await urlCheck.locator('td.fail').count(), 1);
    assert.match((await urlCheck.textContent()) ?? '', /"http:\/\/localhost:8080\/fhir\/ServiceRequest".*"http:\/\/localhost:8080\/fhir\/\/ServiceRequest"/);
    await page.screenshot({ path: join(OUT, 'viewer-post.png'), fullPage: true });

    // a GET trajectory: the response is collapsed, then opened and pretty-printed
    await page.goto(`${viewer.url}#/task/task7_3`);
    await page.waitForSelector('.traj[data-loaded="true"]');
    const details = page.locator('.traj .col').nth(1).locator('details.get-response');
    assert.equal(await details.evaluate((d) => (d as HTMLDetailsElement).open), false);
    await details.locator('summary').click();
    assert.equal(await details.evaluate((d) => (d as HTMLDetailsElement).open), true);
    assert.match((await details.locator('pre').textContent()) ?? '', /^\{\n {2}"resourceType": "Bundle",/);
    assert.equal(await page.locator('.traj .col').nth(1).locator('.verdict .pill.beh').textContent(), 'Stale or first-page value');
    await page.screenshot({ path: join(OUT, 'viewer-trajectory.png'), fullPage: true });

    // the task instruction comes first, above the trajectories
    const instruction = V2_TASKS.find((t) => t.id === 'task7_3')!.instruction;
    assert.equal(await page.locator('#task-instruction pre').textContent(), instruction);
    assert.equal(
      await page.evaluate(() => {
        const i = document.getElementById('task-instruction')!;
        return !!(i.compareDocumentPosition(document.querySelector('.traj')!) & Node.DOCUMENT_POSITION_FOLLOWING) && i.offsetParent !== null;
      }),
      true,
    );

    // keyboard: j / → next and k / ← previous (tasks matching the filters), nothing while typing in an input
    await page.goto(viewer.url);
    await page.reload();
    await page.waitForSelector('.cell[data-task]');
    const title = () => page.locator('#task-title').textContent();
    const at = async (id: string) => {
      await page.waitForFunction((x) => (document.getElementById('task-title')?.textContent ?? '').startsWith(`${x} (`), id);
      return title();
    };
    await page.keyboard.press('j');
    assert.equal(await at('task1_1'), 'task1_1 (task1 — patient lookup by name and DOB)');
    await page.keyboard.press('ArrowRight');
    assert.equal(await at('task2_1'), 'task2_1 (task2 — patient age)');
    await page.keyboard.press('k');
    await at('task1_1');
    await page.keyboard.press('ArrowLeft'); // first task: stays
    await page.keyboard.press('j');
    await at('task2_1');
    assert.equal(await page.locator('#task-pos').textContent(), '2 of 14');
    await page.goto(`${viewer.url}#/?family=task7`);
    await page.reload();
    await page.waitForSelector('.famrow[data-family="task7"] .cell[data-task]');
    assert.equal(await page.locator('#count').textContent(), '6 of 28 task results match');
    await page.keyboard.press('j');
    await at('task7_1');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await at('task7_3');
    assert.equal(await page.locator('#task-pos').textContent(), '3 of 3');
    await page.keyboard.press('j'); // last matching task: stays
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => location.hash), '#/task/task7_3');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'search');
    await page.keyboard.type('j');
    await page.keyboard.press('k');
    await page.waitForTimeout(100);
    assert.equal(await page.evaluate(() => location.hash), '#/task/task7_3');
    assert.equal(await page.locator('#search').inputValue(), 'jk');

    // search by task id: typing a whole id jumps to it; Enter takes the first id starting with the text
    await page.fill('#search', '');
    await page.keyboard.type('task9_1');
    await at('task9_1');
    assert.equal(await page.locator('#search').inputValue(), '');
    await page.keyboard.press('/');
    await page.keyboard.type('TASK2_');
    await page.keyboard.press('Enter');
    await at('task2_1');
    await page.keyboard.press('/');
    await page.keyboard.type('task99_1');
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('#search-msg').textContent(), 'no task task99_1');
    await page.screenshot({ path: join(OUT, 'viewer-keyboard.png'), fullPage: true });

    // the HTML report opens from disk with no network
    const written = await writeReport(buildReport([baseDir, modelDir]), join(OUT, 'report'));
    await page.goto(pathToFileURL(written.files.html).href);
    assert.equal(await page.locator('svg.marks').count(), 3);
    assert.match((await page.locator('h1').textContent()) ?? '', /ehrgym report/);
    await page.screenshot({ path: join(OUT, 'report.png'), fullPage: true });
    assert.deepEqual(foreign, []);
  } finally {
    await browser.close();
    await viewer.close();
  }
});
