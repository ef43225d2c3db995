/**
 * Browser test of the viewer and the HTML report on a tools run beside a text run of the oracle (Debian's Chromium
 * through playwright-core): replies grouped with their calls, pretty arguments, tool errors marked, answers
 * collapsed, hostile tool names and arguments shown as text. Skips, saying why, only when /usr/bin/chromium is
 * absent. Screenshots go to test-output/ (gitignored).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAgent } from '../src/agent/create.js';
import { buildReport, startViewer, writeReport } from '../src/report/index.js';
import { byId, HOSTILE_ARG, HOSTILE_NAME, hostileScript, runInto, SCRIPTS, subset, ToolsScriptAgent } from './report-tools-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian chromium (apt-get install -y chromium) to run the browser test`;
const OUT = resolve('test-output');

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-tools-browser-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('viewer in Chromium: a tools run beside a text run; replies, calls, tool errors, answers; hostile names inert', { skip, timeout: 240_000 }, async () => {
  const { chromium } = await import('playwright-core');
  mkdirSync(OUT, { recursive: true });
  const set = subset('task2_1', 'task2_3', 'task8_1');
  const textDir = await runInto(tmp, 'oracle-text', createAgent('oracle'), 'text', { set });
  const toolsDir = await runInto(
    tmp,
    'tools-script',
    new ToolsScriptAgent('tools-script', {
      task2_1: hostileScript,
      task2_3: SCRIPTS.task2_3!.script,
      task8_1: SCRIPTS.task8_1!.script,
    }),
    'tools',
    { set },
  );
  const viewer = await startViewer([textDir, toolsDir], { port: 0 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30_000); // a loaded CI machine can take seconds over a full-page screenshot
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(viewer.url);
    await page.waitForSelector('.cell[data-task]');
    assert.deepEqual(await page.locator('.card .label').allTextContents(), ['oracle-text · oracle · text', 'tools-script · tools-script · tools']);
    assert.equal(await page.locator('.card .tool-usage').count(), 1);
    assert.equal(await page.locator('.card .tool-usage').textContent(), '9 tool calls · 4 tool errors · 3 parallel · no recovery from text');

    // three calls in one reply, with the text beside them: grouped, the two tool errors marked, the GET answer collapsed
    await page.goto(`${viewer.url}#/task/task2_3`);
    await page.waitForSelector('.traj[data-loaded="true"]');
    const [textCol, toolsCol] = [page.locator('.traj .col').nth(0), page.locator('.traj .col').nth(1)];
    assert.deepEqual(await textCol.locator('.item').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind'))), [
      'prompt',
      'GET',
      'get-response',
      'FINISH',
    ]); // the text run as before
    assert.equal(await toolsCol.locator('.kv.protocol').textContent(), 'tools protocol');
    const turns = toolsCol.locator('.item.tool-turn');
    assert.deepEqual(await turns.evaluateAll((els) => els.map((e) => e.getAttribute('data-calls'))), ['3', '2']);
    const first = turns.nth(0);
    assert.equal(await first.locator('.head .pill').first().textContent(), 'parallel');
    assert.equal(await first.locator('pre.assistant-text').textContent(), 'Looking the patient up.');
    assert.deepEqual(await first.locator('.call').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind'))), ['tool-error', 'tool-error', 'GET']);
    assert.deepEqual(await first.locator('.call .tool-name').allTextContents(), ['lookup_patient', 'patient_search', 'patient_search']);
    assert.deepEqual(await first.locator('.call .pill.bad').allTextContents(), ['tool error: unknown tool', 'tool error: bad arguments']);
    const mrn = byId.get('task2_3')!.eval_MRN!;
    assert.equal(await first.locator('.call').nth(0).locator('pre.tool-args').textContent(), `{\n  "mrn": "${mrn}"\n}`);
    assert.match(
      (await first.locator('.call').nth(0).locator('pre.tool-result').textContent()) ?? '',
      /^Error in the tool call: unknown tool "lookup_patient"/,
    );
    assert.equal(await first.locator('.call').nth(1).locator('pre.tool-args').textContent(), '{"identifier": ');
    const get = first.locator('.call[data-kind="GET"]');
    assert.equal(await get.locator('.kv.action code').textContent(), `http://localhost:8080/fhir/Patient?identifier=${mrn}`);
    const details = get.locator('details.get-response');
    assert.equal(await details.evaluate((d) => (d as HTMLDetailsElement).open), false);
    await details.locator('summary').click();
    assert.match((await details.locator('pre').textContent()) ?? '', /^\{\n {2}"resourceType": "Bundle",/);
    const second = turns.nth(1);
    assert.deepEqual(await second.locator('.call').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind'))), ['FINISH', 'not-executed']);
    assert.equal(await second.locator('.call.skipped .pill').textContent(), 'not executed (after finish)');
    await page.screenshot({ path: join(OUT, 'viewer-tools.png'), fullPage: true });

    // a POST through a create tool: accepted, its grader checks beside it
    await page.goto(`${viewer.url}#/task/task8_1`);
    await page.waitForSelector('.traj[data-loaded="true"]');
    const post = page.locator('.traj .col').nth(1).locator('.call[data-kind="POST"]');
    assert.equal(await post.locator('.kv.action code').textContent(), 'http://localhost:8080/fhir/ServiceRequest');
    assert.equal(await post.locator('.kv.action .pill').textContent(), 'accepted');
    assert.ok((await post.locator('table.checks tr[data-check]').count()) > 0);

    // hostile tool name, arguments and text: shown as text, nothing runs, no element made from them
    await page.goto(`${viewer.url}#/task/task2_1`);
    await page.waitForSelector('.traj[data-loaded="true"]');
    const col = page.locator('.traj .col').nth(1);
    assert.equal(await col.locator('.call .tool-name').first().textContent(), HOSTILE_NAME);
    assert.equal(await col.locator('.call').nth(1).locator('pre.tool-args').textContent(), HOSTILE_ARG);
    assert.equal(await col.locator('.item.tool-turn').nth(1).locator('pre.assistant-text').textContent(), HOSTILE_ARG);
    // the reasoning beside the calls is marked on the reply, not on a call; the tool errors carry no text behaviour
    assert.deepEqual(await col.locator('.item.tool-turn').nth(0).locator('.head .pill.beh').allTextContents(), ['Reasoning block']);
    assert.equal(await col.locator('.call .pill.beh').count(), 0);
    assert.deepEqual(await col.locator('.item.tool-turn').nth(1).locator('.head .pill.beh').allTextContents(), [
      'Prose instead of / around an action',
      'Markdown fence',
    ]);
    assert.equal(await page.locator('.traj img, .traj script, .traj b').count(), 0);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
    await page.screenshot({ path: join(OUT, 'viewer-tools-hostile.png'), fullPage: true });

    // the HTML report of the same runs, from disk: the tools side of a case study, nothing run
    const written = await writeReport(buildReport([textDir, toolsDir]), join(OUT, 'report-tools'));
    await page.goto(pathToFileURL(written.files.html).href);
    assert.ok((await page.locator('.reply .call').count()) > 0);
    assert.equal(await page.locator('main img, main script').count(), 0);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.screenshot({ path: join(OUT, 'report-tools.png'), fullPage: true });
    assert.deepEqual(dialogs, []);
  } finally {
    await browser.close();
    await viewer.close();
  }
});
