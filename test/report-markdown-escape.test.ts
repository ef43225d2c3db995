/**
 * report.md must not carry live markup from the run folders: hostile text planted in every place run data reaches
 * the Markdown (folder label, agent and task-set names, task ids, family, statuses, agent messages and answers in
 * behaviour examples and case studies, the task instruction, leaderboard names) is rendered with markdown-it with raw
 * HTML enabled (as permissive renderers do), and no element, event handler or javascript: link may come out of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import MarkdownIt from 'markdown-it';
import { analyze, loadRuns, renderReport } from '../src/report/index.js';
import { mdCode, mdText } from '../src/report/markdown.js';
import { BASE, cli, GET_OK, bundle, obs, type Episode, writeRunFolder } from './report-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-md-escape-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const IMG = '<img src=x onerror=alert(1)>';
const HOSTILE = [
  IMG,
  '<script>alert(2)</script>',
  '<svg onload=alert(3)>',
  '[link](javascript:alert(4))',
  '![pic](javascript:alert(5))',
  '<javascript:alert(6)>',
  '` <img src=x onerror=alert(7)> `',
  '``` <b onmouseover=alert(8)>x</b>',
  'cell | break\n<iframe src=javascript:alert(9)>',
  '&lt;img src=x onerror=alert(10)&gt;',
].join(' ');

const md = new MarkdownIt({ html: true, linkify: true });

/** Everything in rendered HTML that could run script or load something. */
function liveMarkup(html: string): string[] {
  const found: string[] = [];
  for (const m of html.matchAll(/<\/?([a-zA-Z][\w-]*)([^>]*)>/g)) {
    const [tag, name, attrs] = m;
    if (!/^(?:p|h[1-6]|table|thead|tbody|tr|th|td|ul|ol|li|strong|em|code|pre|a|br|hr|s|blockquote)$/.test(name!)) found.push(tag);
    else if (/\bon\w+\s*=/i.test(attrs!) || /\b(?:href|src)\s*=\s*"?\s*javascript:/i.test(attrs!)) found.push(tag);
  }
  return found;
}

/** Every table keeps its column count (no cell broken by a `|` or a line break from run data). */
function tableShapes(html: string): string[] {
  const bad: string[] = [];
  for (const t of html.matchAll(/<table>([\s\S]*?)<\/table>/g)) {
    const rows = [...t[1]!.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) => (r[1]!.match(/<t[hd][ >]/g) ?? []).length);
    if (new Set(rows).size !== 1) bad.push(`${rows.join(',')}: ${t[1]!.slice(0, 200)}`);
  }
  return bad;
}

test('mdText and mdCode keep any text inert and literal', () => {
  for (const s of [HOSTILE, 'a_b*c*', '`', '``x``', ' lead', 'trail ', '|', '&amp;', '\\*not em\\*']) {
    const inText = md.renderInline(`x ${mdText(s)} y`);
    assert.deepEqual(liveMarkup(inText), [], s);
    const code = md.renderInline(`x ${mdCode(s)} y`);
    assert.deepEqual(liveMarkup(code), [], s);
    // the literal text comes back (newlines as spaces), HTML-escaped once by the renderer
    const literal = s.replace(/\n/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
    assert.ok(inText.includes(literal), `mdText lost text: ${s} → ${inText}`);
    if (s.trim()) assert.ok(code.includes(`<code>${literal}</code>`), `mdCode lost text: ${s} → ${code}`);
  }
  const cell = md.render(`| a | b |\n|---|---|\n| ${mdText('x | y\nz')} | 2 |\n`);
  assert.match(cell, /<td>x \| y z<\/td>\s*<td>2<\/td>/);
});

test('report.md: hostile run data everywhere renders to no markup', async () => {
  const fam = '<b onclick=alert(11)>fam</b>';
  const episode = (id: string, ok: boolean): Episode => ({
    id,
    question: `Find the latest CBG. ${HOSTILE}`,
    items: [
      ['agent', `${HOSTILE}\nGET ${BASE}Observation?patient=S1234567&code=GLU`],
      ['user', GET_OK(bundle([obs(120, '2023-11-12T09:00:00+00:00', 'GLU')]))],
      ['agent', ok ? 'FINISH([120])' : `FINISH(${HOSTILE})`],
    ],
    status: ok ? 'completed' : `task error: ${HOSTILE}`,
    result: ok ? '[120]' : HOSTILE,
    correct: ok,
    reference: [120],
  });
  const ids = [`task7_${IMG}`, `${fam}_1`, 'task5_1'];
  const a = writeRunFolder(join(tmp, IMG), `agent ${HOSTILE}`, [episode(ids[0]!, false), episode(ids[1]!, true), episode(ids[2]!, false)], `set ${HOSTILE}`);
  const b = writeRunFolder(join(tmp, 'other'), `agent ${HOSTILE}`, [episode(ids[0]!, true), episode(ids[1]!, false), episode(ids[2]!, true)], `set ${HOSTILE}`);
  const out = join(tmp, 'report');
  const r = await cli('report', a, b, '--out', out);
  assert.equal(r.code, 0, r.err);
  const text = readFileSync(join(out, 'report.md'), 'utf8');
  // the planted text did reach every part of the report
  for (const part of ['## Scores', '## Behaviour analysis', 'examples', '#### Case studies', 'Task instruction:']) assert.ok(text.includes(part), part);
  const html = md.render(text);
  assert.deepEqual(liveMarkup(html), []);
  assert.deepEqual(tableShapes(html), []);
  // shown as text, not dropped: the label, the agent, a status, an evidence quote and the instruction
  const shown = (html.match(/&lt;img src=x onerror=alert\(1\)&gt;/g) ?? []).length;
  assert.ok(shown >= 10, `escaped payload shown ${shown} times`);
  assert.match(html, /&lt;b onclick=alert\(11\)&gt;fam&lt;\/b&gt;/);
  // report.html of the same runs (its charts carry the family and run labels too): no markup either
  const page = readFileSync(join(out, 'report.html'), 'utf8');
  assert.doesNotMatch(page, /<(?:img|script|iframe|b)\b|<svg onload/i);
  assert.match(page, /&lt;b onclick=alert\(11\)&gt;fam&lt;\/b&gt;/);

  // leaderboard names and sources come from a file the user may pass: escaped too
  const board = join(tmp, 'board.json');
  writeFileSync(
    board,
    JSON.stringify({
      description: 'x',
      tables: [
        {
          id: 'third-party-x',
          title: `T ${HOSTILE}`,
          taskSet: 'x',
          tasks: 300,
          source: `S ${HOSTILE}`,
          rows: [{ model: `M ${HOSTILE}`, overall: 0.5, query: null, action: null, confirmed: false, note: `N ${HOSTILE}`, source: `R ${HOSTILE}` }],
        },
      ],
    }),
  );
  const { markdown } = await renderReport(analyze(loadRuns([a, b]), { leaderboardPath: board }));
  const lb = md.render(markdown);
  assert.deepEqual(liveMarkup(lb), []);
  assert.deepEqual(tableShapes(lb), []);
  for (const p of ['T ', 'S ', 'M ', 'N ', 'R ']) assert.ok(lb.includes(`${p}&lt;img src=x onerror=alert(1)&gt;`), p);
});
