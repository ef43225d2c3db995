import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { buildReport, BEHAVIOUR_IDS, LEADERBOARD_PATH, loadLeaderboard, renderReport, wilson } from '../src/report/index.js';
import { behaviourChartSpec, familyChartSpec, renderSvg } from '../src/report/charts.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { cli, baseEpisodes, BASE_CORRECT, CLEAN_EPISODE, ftEpisodes, FT_CORRECT, ONE_OF_EACH, writeRunFolder } from './report-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-report-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const oneDir = writeRunFolder(join(tmp, 'one-of-each'), 'scripted-behaviours', [...Object.values(ONE_OF_EACH).map((x) => x.episode), CLEAN_EPISODE]);
const baseDir = writeRunFolder(join(tmp, 'base'), 'base-model', baseEpisodes());
const ftDir = writeRunFolder(join(tmp, 'finetuned'), 'finetuned-model', ftEpisodes());

test('a model showing each behaviour once: every behaviour counted once, in its family', () => {
  const data = buildReport([oneDir]);
  const r = data.runs[0]!;
  assert.equal(r.behaviours.length, 13);
  for (const id of BEHAVIOUR_IDS) {
    const s = r.behaviours.find((b) => b.behaviour === id)!;
    const expected = ONE_OF_EACH[id]!;
    assert.equal(s.tasks, 1, `${id}: tasks`);
    assert.equal(s.occurrences, 1, `${id}: occurrences`);
    assert.deepEqual(s.perFamily, { [expected.family]: 1 }, `${id}: per family`);
    assert.equal(s.examples[0]!.taskId, expected.episode.id);
  }
  // each crafted episode shows exactly its own behaviour; the clean one none
  for (const [id, { episode }] of Object.entries(ONE_OF_EACH))
    assert.deepEqual(
      r.findings[episode.id]!.map((f) => f.behaviour),
      [id],
    );
  assert.equal(r.findings[CLEAN_EPISODE.id], undefined);
  const s = r.scores;
  assert.equal(s.total, 14);
  assert.equal(s.correct, 2);
  assert.deepEqual({ ...s.status, raw: undefined }, { completed: 10, invalidAction: 2, roundLimit: 1, contextLimit: 1, error: 0, raw: undefined });
  assert.equal(s.query.total, 9);
  assert.equal(s.query.correct, 1);
  assert.equal(s.action.total, 5);
  assert.equal(s.action.correct, 1);
  assert.equal(s.avgRounds, 29 / 14); // agent turns: 1+1+2+1+2+2+2+1+2+2+2+8+1 (+2 clean)
  assert.equal(s.perFamily.map((f) => f.family).join(','), 'task1,task2,task3,task4,task5,task6,task7,task8,task9,task10');
  assert.deepEqual(
    s.perFamily.find((f) => f.family === 'task7'),
    { family: 'task7', name: 'latest CBG', correct: 1, total: 4, sr: 0.25, ci95: wilson(1, 4) },
  );
});

test('base vs fine-tuned: flips, per-family deltas, exact McNemar, behaviour deltas, case studies', () => {
  const data = buildReport([baseDir, ftDir]);
  assert.equal(
    data.runs[0]!.scores.correct,
    BASE_CORRECT.reduce((a, b) => a + b, 0),
  );
  assert.equal(
    data.runs[1]!.scores.correct,
    FT_CORRECT.reduce((a, b) => a + b, 0),
  );
  const c = data.comparisons[0]!;
  assert.equal(c.base, 'base');
  assert.equal(c.other, 'finetuned');
  assert.deepEqual(c.fixed, ['task1_3', 'task1_4', 'task2_2', 'task2_3', 'task7_4']);
  assert.deepEqual(c.broken, ['task7_3']);
  assert.deepEqual(c.mcnemar, { fixed: 5, broken: 1, pValue: 14 / 64 }); // R: binom.test(1, 6)$p.value = 0.21875
  assert.equal(c.overallDelta, 10 / 12 - 6 / 12);
  assert.deepEqual(c.perFamily, [
    { family: 'task1', base: 0.5, other: 1, delta: 0.5 },
    { family: 'task2', base: 0.25, other: 0.75, delta: 0.5 },
    { family: 'task7', base: 0.75, other: 0.75, delta: 0 },
  ]);
  const d = Object.fromEntries(c.behaviourDeltas.map((x) => [x.behaviour, [x.base, x.other, x.delta]]));
  assert.deepEqual(d.fence, [6, 0, -6]);
  assert.deepEqual(d.think, [0, 1, 1]);
  for (const id of BEHAVIOUR_IDS.filter((x) => x !== 'fence' && x !== 'think')) assert.deepEqual(d[id], [0, 0, 0], id);
  assert.deepEqual(
    c.caseStudies.map((x) => [x.taskId, x.change, x.divergence]),
    [
      ['task1_3', 'fixed', 3],
      ['task1_4', 'fixed', 3],
      ['task2_2', 'fixed', 3],
      ['task2_3', 'fixed', 3],
      ['task7_4', 'fixed', 3],
      ['task7_3', 'broken', 3],
    ],
  );
  const cs = c.caseStudies[0]!;
  assert.equal(cs.base.items.length, 1);
  assert.match(cs.base.items[0]!.content, /^```json\nFINISH/);
  assert.equal(cs.other.items[0]!.content, 'FINISH(["S1000003"])');
});

test('ehrgym report writes report.md, self-contained report.html and report.json, byte-identical on rerun', async () => {
  const out1 = join(tmp, 'out1');
  const out2 = join(tmp, 'out2');
  const r1 = await cli('report', baseDir, ftDir, '--out', out1);
  assert.equal(r1.code, 0, r1.err);
  assert.match(r1.out, /^base: 50\.00% \(6\/12, 95% CI 25\.4–74\.6%\)$/m);
  assert.match(r1.out, /^finetuned vs base: 5 fixed, 1 broken, McNemar p = 0\.2188$/m);
  const r2 = await cli('report', baseDir, ftDir, '--out', out2);
  assert.equal(r2.code, 0);
  for (const f of ['report.md', 'report.html', 'report.json']) {
    assert.ok(readFileSync(join(out1, f)).equals(readFileSync(join(out2, f))), `${f} differs between runs`);
  }
  const html = readFileSync(join(out1, 'report.html'), 'utf8');
  assert.equal((html.match(/<svg /g) ?? []).length, 3);
  assert.doesNotMatch(html, /<script|<link|<img|@import|url\(/i);
  assert.doesNotMatch(html, /\b(?:src|href)="(?:https?:)?\/\//i);
  assert.match(html, /p = 0\.2188/);
  const md = readFileSync(join(out1, 'report.md'), 'utf8');
  assert.match(md, /\| task1 — patient lookup by name and DOB \| 50\.0% \| 100\.0% \| \+50\.0 pp \|/);
  assert.match(md, /\| task2 — patient age \| 25\.0% \(1\/4; 4\.6% – 69\.9%\) \| 75\.0% \(3\/4; 30\.1% – 95\.4%\) \|/);
  assert.match(md, /\*\*Fixed\*\* \(5\): `task1_3`, `task1_4`, `task2_2`, `task2_3`, `task7_4`/);
  assert.match(md, /\| Markdown fence \| 6 \| 0 \| −6 \|/);
  assert.match(md, /Llama 3\.3 \(70B\) \| 46\.33% \| — \| — \| \*approximate; not checked against the paper table\*/);
  const json = JSON.parse(readFileSync(join(out1, 'report.json'), 'utf8'));
  assert.equal(json.comparisons[0].mcnemar.pValue, 0.21875);
  assert.equal(json.runs[0].dir, undefined);
  const j = await cli('report', oneDir, '--out', join(tmp, 'out3'), '--json');
  assert.equal(j.code, 0);
  assert.equal(JSON.parse(j.out).runs[0].scores.correct, 2);
});

test('bad input: one line `ehrgym: …` and a non-zero exit', async () => {
  const missing = await cli('report', join(tmp, 'nope'));
  assert.equal(missing.code, 2);
  assert.equal(missing.err, `ehrgym: run folder not found: ${join(tmp, 'nope')}\n`);

  const notRun = join(tmp, 'not-a-run');
  mkdirSync(notRun);
  const nr = await cli('report', notRun);
  assert.equal(nr.err, `ehrgym: not a run folder: ${join(notRun, 'runs.jsonl')} is missing\n`);

  const bad = writeRunFolder(join(tmp, 'malformed'), 'x', [CLEAN_EPISODE]);
  writeFileSync(join(bad, 'runs.jsonl'), '{"index": 0, "output": \n');
  const m = await cli('report', bad);
  assert.equal(m.code, 2);
  assert.equal(m.err, `ehrgym: ${join(bad, 'runs.jsonl')} line 1: not valid JSON\n`);

  const orphan = writeRunFolder(join(tmp, 'orphan'), 'x', [CLEAN_EPISODE]);
  writeFileSync(join(orphan, 'runs.jsonl'), '');
  assert.equal(
    (await cli('report', orphan)).err,
    `ehrgym: ${join(orphan, 'grades.jsonl')}: task task10_1 (index 0) has no line in runs.jsonl or error.jsonl\n`,
  );

  const empty = writeRunFolder(join(tmp, 'empty'), 'x', [CLEAN_EPISODE]);
  writeFileSync(join(empty, 'grades.jsonl'), '');
  writeFileSync(join(empty, 'runs.jsonl'), '');
  const e = await cli('report', empty);
  assert.equal(e.code, 2);
  assert.equal(e.err, `ehrgym: empty run: ${join(empty, 'grades.jsonl')} has no tasks\n`);

  const diff = await cli('report', baseDir, oneDir, '--out', join(tmp, 'never'));
  assert.equal(diff.code, 2);
  assert.equal(
    diff.err,
    'ehrgym: runs cover different task sets: base has 12 tasks, one-of-each has 14 (task1_1 only in base); compare runs over the same tasks\n',
  );
  assert.equal(existsSync(join(tmp, 'never')), false);

  const partial = writeRunFolder(join(tmp, 'interrupted'), 'x', [CLEAN_EPISODE]);
  rmSync(join(partial, 'summary.json'));
  const p = await cli('report', partial);
  assert.equal(p.code, 2);
  assert.equal(p.err, `ehrgym: incomplete run folder: ${join(partial, 'summary.json')} is missing (interrupted? finish it with \`ehrgym eval --resume\`)\n`);

  const v1 = await cli('view', join(tmp, 'nope'));
  assert.equal(v1.code, 2);
  assert.equal(v1.err, `ehrgym: run folder not found: ${join(tmp, 'nope')}\n`);
  const v2 = await cli('view', baseDir, '--port', 'http');
  assert.equal(v2.code, 2);
  assert.equal(v2.err, 'ehrgym: --port must be an integer 0-65535, got "http"\n');

  for (const r of [missing, nr, m, e, diff, p, v1, v2]) assert.equal(r.err.split('\n').length, 2, 'exactly one line');
});

test('model text is escaped in report.html (no markup from the run reaches the page)', async () => {
  const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
  const dir = writeRunFolder(join(tmp, 'evil'), 'evil<b>', [
    { ...CLEAN_EPISODE, items: [['agent', evil]], status: 'agent invalid action', result: null, correct: false },
  ]);
  const out = join(tmp, 'evil-report');
  const r = await cli('report', dir, '--out', out);
  assert.equal(r.code, 0, r.err);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /<script|<img|<b>/i);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;&lt;img src=x onerror=alert\(2\)&gt;/);
  assert.match(html, /evil&lt;b&gt;/);
});

test('leaderboard: a full 300-task v2 run is ranked in the paper and third-party tables; other task sets are not', async () => {
  // 300 tasks, 171 correct (57.00%): between GPT-4o-mini 56.33% and the Harbor parity 57.89%
  const episodes = Array.from({ length: 300 }, (_, i) => {
    const fam = Math.floor(i / 30) + 1;
    return { ...CLEAN_EPISODE, id: `task${fam}_${(i % 30) + 1}`, correct: i % 30 < 17 || (fam === 1 && i % 30 === 29) };
  });
  assert.equal(episodes.filter((e) => e.correct).length, 171);
  const full = writeRunFolder(join(tmp, 'full-v2'), 'model', episodes, 'medagentbench-v2');
  const out = join(tmp, 'lb');
  assert.equal((await cli('report', full, '--out', out)).code, 0);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(
    md,
    /\| 4 \| Gemini-1\.5 Pro \| 62\.00% \| 52\.67% \| 71\.33% \| {2}\|\n\| 5 \| \*\*full-v2\*\* \(this report\) \| 57\.00% \| 57\.33% \| 56\.67% \| {2}\|/,
  ); // query 86/150, action 85/150
  assert.match(md, /\| 6 \| GPT-4o-mini \| 56\.33% \|/);
  assert.match(md, /\| 4 \| \*\*full-v2\*\* \(this report\) \| 57\.00% \|/); // third-party table: 59.3, 58.0, 57.89, then this run
  // 2026 third-party table: below Gemini 2.5 Flash (72.8%), above Mistral Small 3.2 (51.7%); sources shown per row
  assert.match(
    md,
    /\| 10 \| Gemini 2\.5 Flash \(Alfaxad\/Sara runs\) \| 72\.80% \| — \| — \| \*third-party run\* \| github\.com\/Alfaxad\/Sara, MedAgentBench\/outputs\/benchmarks\/README\.md \|\n\| 11 \| \*\*full-v2\*\* \(this report\) \| 57\.00% \| 57\.33% \| 56\.67% \| {2}\| {2}\|/,
  );
  assert.match(md, /\| 1 \| GitHub Copilot agent over MCP FHIR tools \(u9401066\/medagent-copilot\) \| 98\.33% \| 99\.33% \| 97\.33% \|/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(
    html,
    /<td>Claude Opus 4\.5 \(Alfaxad\/Sara runs\)<\/td>.*?<span class="muted">github\.com\/Alfaxad\/Sara, MedAgentBench\/outputs\/benchmarks\/README\.md<\/span>/,
  );
  assert.doesNotMatch(md, /Not placed in a table/);
  const small = await cli('report', baseDir, '--out', join(tmp, 'lb2'));
  assert.equal(small.code, 0);
  const md2 = readFileSync(join(tmp, 'lb2', 'report.md'), 'utf8');
  assert.doesNotMatch(md2, /\(this report\)/);
  assert.match(md2, /Not placed in a table \(task set differs from every published table\): base \(crafted, 12 tasks, 50\.0%\)/);
});

test('three runs: each later run is compared with the first; same folder names get distinct labels', () => {
  const again = writeRunFolder(join(tmp, 'second', 'base'), 'base-model', baseEpisodes());
  const data = buildReport([baseDir, ftDir, again]);
  assert.deepEqual(
    data.runs.map((r) => r.label),
    [`${tmp.split('/').pop()}/base`, 'finetuned', 'second/base'],
  );
  assert.equal(data.comparisons.length, 2);
  assert.deepEqual(
    data.comparisons.map((c) => [c.other, c.mcnemar.fixed, c.mcnemar.broken, c.mcnemar.pValue]),
    [
      ['finetuned', 5, 1, 14 / 64],
      ['second/base', 0, 0, 1],
    ],
  );
  assert.deepEqual(data.comparisons[1]!.caseStudies, []);
});

test('per-family 95% intervals: tables and error bars in the chart; family names beside ids', async () => {
  const data = buildReport([baseDir, ftDir]);
  const fam = data.runs[0]!.scores.perFamily.find((f) => f.family === 'task2')!;
  assert.deepEqual(fam.ci95, wilson(1, 4));
  const spec = familyChartSpec(data.runs)!;
  const svg = (await renderSvg(spec))!;
  const rules = [
    ...svg.matchAll(/aria-label="low: ([\d.]+); family: ([^;]+); high: ([\d.]+); run: (\w+)" role="graphics-symbol" aria-roledescription="rule mark"/g),
  ];
  assert.equal(rules.length, 6); // 3 families × 2 runs, one error bar each
  const t2 = rules.find((m) => m[2] === 'task2 — patient age' && m[4] === 'base')!;
  assert.ok(Math.abs(Number(t2[1]) - wilson(1, 4).low) < 1e-9 && Math.abs(Number(t2[3]) - wilson(1, 4).high) < 1e-9);
  assert.match(svg, /task7 — latest CBG/);
  const { html } = await renderReport(data);
  assert.match(html, /<td>task2 — patient age<\/td><td class="n">25\.0% \(1\/4; 4\.6%–69\.9%\)<\/td>/);
  assert.match(html, /<td>task1 — patient lookup by name and DOB<\/td><td class="n">50\.0%<\/td><td class="n">100\.0%<\/td>/); // comparison
  assert.match(html, /<p class="muted">Families: task1 — patient lookup by name and DOB; task2 — patient age; task7 — latest CBG\.<\/p>/);
  // a family the registry does not know keeps its bare id
  const custom = writeRunFolder(join(tmp, 'custom-family'), 'x', [{ ...CLEAN_EPISODE, id: 'mytask_1' }]);
  const c = buildReport([custom]).runs[0]!.scores.perFamily[0]!;
  assert.deepEqual([c.family, c.name], ['mytask', undefined]);
  assert.match(renderMarkdown(buildReport([custom])), /\| mytask \| 100\.0% \(1\/1; 20\.7% – 100\.0%\) \|/);
});

test('case studies start with the task instruction (report.md and report.html)', async () => {
  const data = buildReport([baseDir, ftDir]);
  const cs = data.comparisons[0]!.caseStudies[0]!;
  assert.equal(
    cs.instruction,
    'What’s the MRN of the patient with name Name task1_3 and DOB of 1950-01-01? If the patient does not exist, the answer should be "Patient not found"',
  );
  const { markdown, html } = await renderReport(data);
  const md = markdown.slice(markdown.indexOf('#### `task1_3`'));
  assert.match(
    md,
    /^#### `task1_3` \(task1 — patient lookup by name and DOB\) — fixed\n\nTask instruction:\n\n```\nWhat’s the MRN of the patient with name Name task1_3 and DOB of 1950-01-01\?.*\n```\n\nTrajectories from the first divergence/,
  );
  const h = html.slice(html.indexOf('<h4>task1_3'));
  assert.ok(h.indexOf('class="instruction"') >= 0 && h.indexOf('class="instruction"') < h.indexOf('class="side"'));
  assert.match(h, /<div class="who">Task instruction<\/div><pre>What’s the MRN of the patient with name Name task1_3/);
});

test('nothing to plot: a sentence instead of an empty chart or comparison', async () => {
  const clean = writeRunFolder(join(tmp, 'clean'), 'clean-model', [CLEAN_EPISODE]);
  const data = buildReport([clean]);
  assert.equal(behaviourChartSpec(data.runs), null);
  const { markdown, html } = await renderReport(data);
  assert.equal((html.match(/<svg /g) ?? []).length, 2); // family and leaderboard charts only
  assert.match(html, /<p class="muted no-chart">No behaviour detected in the run: nothing to chart\.<\/p>/);
  assert.match(html, /<h2 id="comparison">Comparison<\/h2><p class="muted no-chart">One run only: nothing to compare\./);
  assert.match(markdown, /## Comparison\n\nOne run only: nothing to compare\. Give two or more run folders/);
  // two runs: the comparison is there, not the sentence
  assert.doesNotMatch((await renderReport(buildReport([baseDir, ftDir]))).markdown, /One run only/);
  // a leaderboard file without a 300-task table: no leaderboard chart, a sentence
  const v1Only = join(tmp, 'v1-only.json');
  const board = JSON.parse(readFileSync(LEADERBOARD_PATH, 'utf8'));
  writeFileSync(v1Only, JSON.stringify({ ...board, tables: board.tables.filter((t: { tasks: number }) => t.tasks !== 300) }));
  const noLb = await renderReport(buildReport([baseDir, ftDir], { leaderboardPath: v1Only }));
  assert.equal((noLb.html.match(/<svg /g) ?? []).length, 2);
  assert.match(noLb.html, /No 300-task published table to plot\./);
});

test('bundled leaderboard: 2026 third-party runs with their sources, as published', async () => {
  const board = loadLeaderboard();
  const t = board.tables.find((x) => x.id === 'third-party-2026')!;
  assert.equal(t.tasks, 300);
  assert.equal(t.taskSet, 'medagentbench-v2');
  assert.deepEqual(
    t.rows.map((r) => [r.model.replace(/ \(Alfaxad\/Sara runs\)$/, ''), r.overall]),
    [
      ['GitHub Copilot agent over MCP FHIR tools (u9401066/medagent-copilot)', 0.9833],
      ['Claude Opus 4.5', 0.95],
      ['Gemini 3 Flash Preview', 0.9],
      ['Grok 4.1 Fast', 0.877],
      ['Claude Sonnet 4.5', 0.86],
      ['GPT-4.1', 0.773],
      ['GPT-4o', 0.77],
      ['GPT-5.1', 0.76],
      ['Qwen3-14B', 0.74],
      ['Gemini 2.5 Flash', 0.728],
      ['Mistral Small 3.2', 0.517],
      ['Llama 4 Scout', 0.413],
      ['Qwen3-8B', 0.4],
      ['Llama 4 Maverick', 0.373],
      ['Llama 3.1-8B Instruct', 0.14],
    ],
  );
  for (const r of t.rows) {
    assert.equal(r.confirmed, false, r.model);
    assert.match(r.source ?? '', /^github\.com\/(?:Alfaxad\/Sara|u9401066\/medagent-copilot), /, r.model);
  }
  // u9401066: 295/300 by the official grader; query 149/150 (task1, 2, 4, 6, 7), action 146/150 (task3, 5, 8, 9, 10)
  const cp = t.rows[0]!;
  assert.deepEqual([cp.overall, cp.query, cp.action], [Number((295 / 300).toFixed(4)), Number((149 / 150).toFixed(4)), Number((146 / 150).toFixed(4))]);
  // every model name is unique across the 300-task tables (the chart keys its bars by name)
  const names = board.tables.filter((x) => x.tasks === 300).flatMap((x) => x.rows.map((r) => r.model + (r.size && r.size !== 'N/A' ? ` (${r.size})` : '')));
  assert.equal(new Set(names).size, names.length);
});
