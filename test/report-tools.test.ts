/**
 * Reports and the viewer over `tools` runs made in the test by `runEval` (embedded MedAgentBench replica, the tools
 * protocol's episode loop, the official grader) with a scripted tools agent that shows each behaviour the tools
 * protocol can show, tool errors, parallel calls, text beside calls, a call after finish, tool-call markup left in the
 * text (with and without `recoverToolText`), an empty reply; then the oracle in the text and the tools protocol.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MarkdownIt from 'markdown-it';
import { createAgent } from '../src/agent/create.js';
import type { Agent } from '../src/agent/types.js';
import type { Protocol } from '../src/protocol/action.js';
import type { TaskOutput } from '../src/tasks/types.js';
import type { TaskSet } from '../src/eval/run.js';
import { analyze, BEHAVIOUR_IDS, createViewerApp, detectAll, loadRuns, renderReport, RunFolderError } from '../src/report/index.js';
import { statusRows } from '../src/report/format.js';
import { leaderboardRows } from '../src/report/markdown.js';
import { prettyJsonText, toolTranscript } from '../src/report/transcript.js';
import { cli } from './report-fixtures.js';
import { BASE, byId, HOSTILE_ARG, HOSTILE_NAME, hostileAgent, IDS, runInto, SCRIPTS, script, subset, ToolsScriptAgent } from './report-tools-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'ehrgym-report-tools-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const run = (name: string, agent: Agent, protocol: Protocol, extra?: { recoverToolText?: boolean; set?: TaskSet }) =>
  runInto(tmp, name, agent, protocol, extra);
const dirs: Record<string, string> = {};

before(async () => {
  dirs.tools = await run('tools-script', script(), 'tools');
  dirs.recover = await run('tools-script-recover', script(), 'tools', { recoverToolText: true });
  dirs.oracleText = await run('oracle-text', createAgent('oracle'), 'text');
  dirs.oracleTools = await run('oracle-tools', createAgent('oracle'), 'tools');
});

const outputsOf = (dir: string): Map<string, TaskOutput> => {
  const grades = readFileSync(join(dir, 'grades.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number; id: string });
  const lines = readFileSync(join(dir, 'runs.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number; output: TaskOutput });
  const idOf = new Map(grades.map((g) => [g.index, g.id]));
  return new Map(lines.map((l) => [idOf.get(l.index)!, l.output]));
};

test('every detector on a tools run: each behaviour the protocol can show, found once, in its task; none on tool errors', () => {
  const data = analyze(loadRuns([dirs.tools!], () => {}));
  const r = data.runs[0]!;
  assert.equal(r.protocol, 'tools');
  for (const id of BEHAVIOUR_IDS) {
    const expected = IDS.filter((t) => SCRIPTS[t]!.behaviour === id);
    const s = r.behaviours.find((b) => b.behaviour === id)!;
    assert.deepEqual(
      IDS.filter((t) => (r.findings[t] ?? []).some((f) => f.behaviour === id)),
      expected,
      `${id}: ${JSON.stringify(s.examples)}`,
    );
    assert.equal(s.occurrences, expected.length, id);
  }
  for (const t of IDS)
    assert.deepEqual(
      (r.findings[t] ?? []).map((f) => f.behaviour),
      SCRIPTS[t]!.behaviour ? [SCRIPTS[t]!.behaviour] : [],
      t,
    );
  // the findings point at the right history items
  const find = (t: string) => r.findings[t]![0]!;
  assert.equal(find('task2_1').turn, 1);
  assert.equal(find('task2_1').evidence, 'The patient is 60 years old.');
  assert.equal(find('task4_1').turn, 1); // the item of the call the reasoning came with
  assert.match(find('task4_1').evidence, /^<think>I should look up magnesium first\.<\/think>$/);
  assert.match(find('task2_2').evidence, /^GET for S6534835; task patient S\d{7}$/);
  assert.match(find('task7_3').evidence, /; no _sort/);
  assert.match(find('task4_2').evidence, /^POST http:\/\/localhost:8080\/fhir\/ServiceRequest /);
  // the detectors see the tool errors' history items and leave them alone
  const out = outputsOf(dirs.tools!);
  const t23 = out.get('task2_3')!;
  const mrn23 = byId.get('task2_3')!.eval_MRN!;
  assert.deepEqual(
    t23.history!.map((h) => h.role),
    ['user', 'agent', 'user', 'agent', 'user', 'agent', 'user', 'agent'],
  );
  assert.deepEqual(
    t23.history!.filter((h) => h.role === 'agent').map((h) => h.content.replace(/^FINISH\(\[\d+\]\)$/, 'FINISH([age])')),
    [`TOOL_CALL lookup_patient {"mrn":"${mrn23}"}`, 'TOOL_CALL patient_search {"identifier": ', `GET ${BASE}Patient?identifier=${mrn23}`, 'FINISH([age])'],
  );
  assert.match(t23.history![2]!.content, /^Error in the tool call: unknown tool "lookup_patient"/);
  assert.match(t23.history![4]!.content, /^Error in the tool call: the arguments of patient_search are not valid JSON/);
  const g = { correct: true, checks: [] };
  assert.deepEqual(detectAll({ id: 'task2_3', family: 'task2', kind: 'query', apiBase: BASE }, t23, g), []);
  // without the manifest's api base a POST through a create tool would look like a wrong URL: the loader uses it
  const t81 = out.get('task8_1')!;
  assert.equal(t81.history![1]!.content.split('\n')[0], `POST ${BASE}ServiceRequest`);
  assert.deepEqual(
    detectAll({ id: 'task8_1', family: 'task8', kind: 'action', apiBase: '' }, t81, g).map((f) => f.behaviour),
    ['wrong-post-url'],
  );
  const loaded = loadRuns([dirs.tools!], () => {})[0]!;
  const info = loaded.tasks.find((t) => t.graded.id === 'task8_1')!.info;
  assert.equal(info.apiBase, BASE);
  assert.equal(info.instruction, byId.get('task8_1')!.instruction); // Context / Question found in the tools prompt
  assert.equal(info.context, byId.get('task8_1')!.context);
  assert.equal(info.mrn, byId.get('task8_1')!.eval_MRN);
});

test('statuses: tool call in text and empty reply have rows of their own; tool errors, parallel calls and recovery are counted', () => {
  const data = analyze(loadRuns([dirs.tools!, dirs.recover!], () => {}));
  const [a, b] = data.runs as [(typeof data.runs)[0], (typeof data.runs)[0]];
  const rows = (r: typeof a) => Object.fromEntries(statusRows(data.runs).map(([name, f]) => [name, f(r)]));
  assert.deepEqual(rows(a), {
    completed: 8,
    'invalid action': 2,
    'empty reply': 1,
    'tool call in text': 1,
    'round limit': 1,
    'context limit': 1,
    error: 0,
  });
  assert.equal(a.scores.status.error, 0);
  assert.deepEqual(a.scores.status.raw, {
    'agent context limit': 1,
    'agent invalid action': 2,
    completed: 8,
    'model empty reply': 1,
    'model tool call in text': 1,
    'task limit reached': 1,
  });
  assert.deepEqual(a.tools, {
    episodes: 14,
    calls: 24,
    callReplies: 21,
    parallelReplies: 2,
    textBesideCalls: 2,
    textReplies: 4,
    unknownTool: { calls: 1, episodes: 1 },
    badArguments: { calls: 1, episodes: 1 },
    notExecuted: 1,
    recovered: { calls: 0, episodes: 0 },
    recoverToolText: false,
  });
  // recovered: task1_1's call read from the text, the episode completed and correct
  assert.equal(rows(b)['tool call in text'], 0);
  assert.equal(rows(b).completed, 9);
  assert.deepEqual([b.tools!.recovered, b.tools!.recoverToolText, b.tools!.calls, b.tools!.textReplies], [{ calls: 1, episodes: 1 }, true, 25, 3]);
  const c = data.comparisons[0]!;
  assert.deepEqual(c.protocols, { base: 'tools', other: 'tools' });
  assert.deepEqual([c.fixed, c.broken], [['task1_1'], []]);
  const cs = c.caseStudies[0]!;
  assert.equal(cs.divergence, 1);
  assert.deepEqual(
    cs.base.turns!.map((t) => [t.calls.length, t.content]),
    [[0, '<tool_call>\n{"name": "finish", "arguments": {"answer": ["S6534835"]}}\n</tool_call>']],
  );
  assert.deepEqual(
    cs.other.turns!.map((t) => t.calls.map((x) => [x.name, x.kind, x.recovered, x.turn, x.action])),
    [[['finish', 'FINISH', true, 1, 'FINISH(["S6534835"])']]],
  );
});

test('transcript: calls aligned with the history items they made; parallel calls, tool errors, a call after finish', () => {
  const out = outputsOf(dirs.tools!);
  const tr = toolTranscript(out.get('task2_3')!)!;
  assert.equal(tr.aligned, true);
  assert.equal(tr.turns.length, 2);
  const [first, second] = tr.turns as [(typeof tr.turns)[0], (typeof tr.turns)[0]];
  assert.equal(first.content, 'Looking the patient up.');
  assert.deepEqual(
    first.calls.map((c) => [c.name, c.kind, c.error ?? null, c.turn, c.resultIndex, c.json]),
    [
      ['lookup_patient', 'tool-error', 'unknown tool', 1, 2, true],
      ['patient_search', 'tool-error', 'bad arguments', 3, 4, false],
      ['patient_search', 'GET', null, 5, 6, true],
    ],
  );
  assert.equal(first.calls[1]!.pretty, '{"identifier": '); // not JSON: shown as sent
  assert.match(first.calls[0]!.result!, /^Error in the tool call: unknown tool "lookup_patient"/);
  assert.deepEqual(
    second.calls.map((c) => [c.name, c.kind, c.turn ?? null, c.result ?? null]),
    [
      ['finish', 'FINISH', 7, null],
      ['patient_search', 'not-executed', null, null],
    ],
  );
  // a transcript that does not match its history is shown from the messages alone
  const o = out.get('task2_3')!;
  const edited = toolTranscript({ ...o, history: o.history!.slice(0, 4) })!;
  assert.equal(edited.aligned, false);
  assert.deepEqual(
    edited.turns.flatMap((t) => t.calls.map((c) => [c.kind, c.turn ?? null])),
    [
      ['tool-error', null],
      ['tool-error', null],
      ['GET', null],
      ['FINISH', null],
      ['not-executed', null],
    ],
  );
  assert.equal(toolTranscript({ ...o, messages: undefined }), undefined);
  // pretty-printing keeps every token as written
  assert.equal(
    prettyJsonText('{"a":1.0,"b":[],"c":{"d":[1e3,"x\\"y"]},"a":2}'),
    '{\n  "a": 1.0,\n  "b": [],\n  "c": {\n    "d": [\n      1e3,\n      "x\\"y"\n    ]\n  },\n  "a": 2\n}',
  );
  assert.equal(prettyJsonText('{"a": '), undefined);
});

test('a text run and a tools run of one agent compare; report.md and report.html show protocols, tool calls and counts', async () => {
  const out = join(tmp, 'report-text-tools');
  const r = await cli('report', dirs.oracleText!, dirs.tools!, dirs.oracleTools!, '--out', out);
  assert.equal(r.code, 0, `${r.err}${r.out}`);
  const again = join(tmp, 'report-text-tools-again');
  assert.equal((await cli('report', dirs.oracleText!, dirs.tools!, dirs.oracleTools!, '--out', again)).code, 0);
  for (const f of ['report.md', 'report.html', 'report.json'])
    assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(again, f))), `${f} differs between runs`);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(
    md,
    /^Runs: `oracle-text` \(oracle, text protocol, report-tools, 14 tasks\), `tools-script` \(tools-script, tools protocol, report-tools, 14 tasks\), `oracle-tools` \(oracle, tools protocol, report-tools, 14 tasks\)\.$/m,
  );
  assert.match(md, /^\| oracle-text \| oracle \| text \| report-tools \| 14 \|/m);
  assert.match(md, /^\| tools-script \| tools-script \| tools \| report-tools \| 14 \|/m);
  assert.match(md, /^\| empty reply \| 0 \(0\.0%\) \| 1 \(7\.1%\) \| 0 \(0\.0%\) \|$/m);
  assert.match(md, /^\| tool call in text \| 0 \(0\.0%\) \| 1 \(7\.1%\) \| 0 \(0\.0%\) \|$/m);
  assert.match(md, /^\| error \| 0 \(0\.0%\) \| 0 \(0\.0%\) \| 0 \(0\.0%\) \|$/m);
  assert.match(md, /^\| tool errors: unknown tool \| — \| 1 \(1 episode\) \| 0 \|/m);
  assert.match(md, /^\| tool errors: bad arguments \| — \| 1 \(1 episode\) \| 0 \|/m);
  assert.match(md, /^\| parallel calls \| — \| 2 \| 0 \|/m);
  assert.match(md, /^\| recovered from text \| — \| off \| off \|/m);
  assert.match(md, /Protocols: oracle-text text, tools-script tools\. /);
  assert.match(md, /Protocols: oracle-text text, oracle-tools tools\. /);
  const data = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  const cmp = data.comparisons.find((c: { other: string }) => c.other === 'tools-script');
  assert.deepEqual(cmp.protocols, { base: 'text', other: 'tools' });
  assert.ok(cmp.caseStudies.length > 0);
  for (const c of cmp.caseStudies) {
    assert.ok(c.divergence >= 1, `${c.taskId}: the prompts differ by design, the divergence is after them`);
    assert.equal(c.base.turns, undefined);
    assert.ok(Array.isArray(c.other.turns), c.taskId);
  }
  const oracleCmp = data.comparisons.find((c: { other: string }) => c.other === 'oracle-tools');
  assert.deepEqual([oracleCmp.fixed, oracleCmp.broken], [[], []]); // same actions, same verdicts in both protocols
  const t22 = md.slice(md.indexOf('#### `task2_2`'));
  assert.match(
    t22,
    /\*\*tools-script\*\* — completed, incorrect\n\n\*assistant\*, message 1: 1 tool call\n\n1\. \*tool call\* `patient_search`\n\n```\n\{\n {2}"identifier": "S6534835"\n\}\n```\n\nas the text protocol's action: `GET http:\/\/localhost:8080\/fhir\/Patient\?identifier=S6534835`\n\n2\. \*tool result\*\n\n```\nHere is the response from the GET request:/,
  );
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /tools-script \(tools-script, tools protocol, report-tools, 14 tasks\)/);
  assert.match(html, /<div class="label">tools-script · tools-script · tools<\/div>/);
  assert.match(html, /<h3 id="tool-calls">Tool calls<\/h3>/);
  assert.match(html, /<p class="muted protocols">Protocols: oracle-text text, tools-script tools\./);
  assert.match(
    html,
    /<div class="who">1\. tool call <code>patient_search<\/code> <\/div><pre class="tool-args">\{\n {2}&quot;identifier&quot;: &quot;S6534835&quot;\n\}<\/pre>/,
  );
  assert.match(html, /<details class="tool-result"><summary>GET response \(\d+ characters\)<\/summary>/);
  assert.doesNotMatch(html, /<script/i);
  // placed in a published table, a tools run says its protocol (the published runs are text unless they say so)
  const placed = analyze(loadRuns([dirs.oracleText!, dirs.recover!], () => {}));
  const table = placed.leaderboard.tables[0]!;
  for (const run of placed.runs) Object.assign(run, { taskSet: table.taskSet, scores: { ...run.scores, total: table.tasks } });
  assert.deepEqual(
    leaderboardRows(placed, table)
      .filter((x) => x.run)
      .map((x) => x.name),
    ['oracle-text', 'tools-script-recover (tools + recovery protocol)'],
  );
  // text-only reports: no tool-call table, no `tool call in text` row
  const textOnly = await renderReport(analyze(loadRuns([dirs.oracleText!], () => {})));
  assert.doesNotMatch(textOnly.markdown, /Tool calls|tool call in text/);
  assert.match(textOnly.markdown, /^\| empty reply \| 0 \(0\.0%\) \|$/m);
});

test('the case study of a reply with three calls: grouped, the tool errors marked (Markdown and HTML)', async () => {
  // task2_3 is correct in the tools run: compare it with a run that got it wrong to get its case study
  const wrong = await run('wrong-2-3', new ToolsScriptAgent('wrong', { task2_3: () => ({ calls: [['finish', { answer: [0] }]] }) }), 'tools', {
    set: subset('task2_3'),
  });
  const one = await run('right-2-3', new ToolsScriptAgent('right', { task2_3: SCRIPTS.task2_3!.script }), 'tools', { set: subset('task2_3') });
  const { markdown, html } = await renderReport(analyze(loadRuns([wrong, one], () => {})));
  const mrn = byId.get('task2_3')!.eval_MRN!;
  const side = markdown.slice(markdown.indexOf('**right-2-3**'));
  assert.match(
    side,
    new RegExp(
      [
        String.raw`\*assistant\*, message 1: 3 tool calls in one reply`,
        String.raw`\*text beside the calls\*\n\n` + '```' + String.raw`\nLooking the patient up\.\n` + '```',
        String.raw`1\. \*tool call\* ` + '`lookup_patient`' + String.raw` — \*\*tool error\*\* \(unknown tool\)`,
        '```' + String.raw`\n\{\n  "mrn": "${mrn}"\n\}\n` + '```',
        String.raw`2\. \*tool result\*\n\n` + '```' + String.raw`\nError in the tool call: unknown tool "lookup_patient"`,
      ].join('[\\s\\S]*?'),
    ),
  );
  assert.match(side, /3\. \*tool call\* `patient_search` — \*\*tool error\*\* \(bad arguments\)\n\n```\n\{"identifier": \n```/);
  assert.match(
    side,
    /\*assistant\*, message 5: 2 tool calls in one reply[\s\S]*?7\. \*tool call\* `finish`[\s\S]*?\*tool call\* `patient_search` — not executed \(after finish\)/,
  );
  assert.match(
    html,
    /<div class="reply"><div class="who">assistant, message 1: 3 tool calls in one reply<\/div><div class="who">text beside the calls<\/div><pre class="assistant-text">Looking the patient up\.<\/pre><div class="call error"><div class="who">1\. tool call <code>lookup_patient<\/code> <span class="pill bad">tool error: unknown tool<\/span><\/div>/,
  );
  assert.match(
    html,
    /<div class="call skipped"><div class="who">tool call <code>patient_search<\/code> <span class="pill">not executed \(after finish\)<\/span><\/div>/,
  );
});

test('hostile tool names, arguments and reply text stay inert in report.md, report.html and the viewer API', async () => {
  const set = subset('task2_1');
  const hostile = await run('hostile', hostileAgent(), 'tools', { set });
  const good = await run('good', createAgent('oracle'), 'tools', { set });
  const data = analyze(loadRuns([good, hostile], () => {}));
  // the reply's text: prose (a reply without calls), reasoning beside the calls, a fence; nothing on the tool errors
  assert.deepEqual(
    data.runs[1]!.findings.task2_1!.map((f) => [f.behaviour, f.turn]),
    [
      ['prose', 5],
      ['think', 1],
      ['fence', 5],
    ],
  );
  const { markdown, html } = await renderReport(data);
  assert.ok(markdown.includes('#### Case studies'));
  const md = new MarkdownIt({ html: true, linkify: true });
  const rendered = md.render(markdown);
  for (const m of rendered.matchAll(/<\/?([a-zA-Z][\w-]*)([^>]*)>/g)) {
    assert.match(m[1]!, /^(?:p|h[1-6]|table|thead|tbody|tr|th|td|ul|ol|li|strong|em|code|pre|a|br|hr)$/, m[0]);
    assert.doesNotMatch(m[2]!, /\bon\w+\s*=|javascript:/i, m[0]);
  }
  // the hostile text is shown, escaped, not dropped
  assert.ok(rendered.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'tool name shown');
  assert.ok(rendered.includes('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;'), 'arguments shown');
  assert.doesNotMatch(html, /<script|<img|<b\b|<svg onload/i);
  assert.ok(html.includes('<code>&lt;script&gt;alert(1)&lt;/script&gt;`x`|y</code>'));
  assert.ok(html.includes('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;'));
  assert.match(html, /<span class="pill bad">tool error: unknown tool<\/span>/);
  // the viewer API hands the text over as data (the page inserts it with textContent)
  const app = createViewerApp(loadRuns([good, hostile], () => {}));
  const tr = (await (await app.request('/api/runs/1/tasks/task2_1')).json()) as {
    protocol: string;
    tools: { turns: Array<{ content: string | null; calls: Array<{ name: string; kind: string; error?: string; arguments: string }> }> };
  };
  assert.equal(tr.protocol, 'tools');
  assert.deepEqual(
    tr.tools.turns[0]!.calls.map((c) => [c.name, c.kind, c.error]),
    [
      [HOSTILE_NAME, 'tool-error', 'unknown tool'],
      ['patient_search', 'tool-error', 'bad arguments'],
    ],
  );
  assert.equal(tr.tools.turns[1]!.content, HOSTILE_ARG);
});

test('viewer API: a tools run carries its replies with their calls beside the history items; text runs are unchanged', async () => {
  const app = createViewerApp(loadRuns([dirs.oracleText!, dirs.tools!], () => {}));
  const runs = (await (await app.request('/api/runs')).json()) as Array<{ protocol: string; tools: { calls: number } | null }>;
  assert.deepEqual(
    runs.map((r) => [r.protocol, r.tools?.calls ?? null]),
    [
      ['text', null],
      ['tools', 24],
    ],
  );
  const text = (await (await app.request('/api/runs/0/tasks/task2_3')).json()) as { protocol: string; tools: unknown; items: Array<{ kind: string }> };
  assert.equal(text.protocol, 'text');
  assert.equal(text.tools, null);
  assert.deepEqual(
    text.items.map((i) => i.kind),
    ['prompt', 'GET', 'get-response', 'FINISH'],
  );
  const tr = (await (await app.request('/api/runs/1/tasks/task2_3')).json()) as {
    items: Array<{ kind: string }>;
    tools: {
      aligned: boolean;
      turns: Array<{ calls: Array<{ kind: string; actionItem: { kind: string; url?: string } | null; resultItem: { kind: string; body?: string } | null }> }>;
    };
  };
  assert.deepEqual(
    tr.items.map((i) => i.kind),
    ['prompt', 'tool-error', 'tool-error-answer', 'tool-error', 'tool-error-answer', 'GET', 'get-response', 'FINISH'],
  );
  assert.equal(tr.tools.aligned, true);
  const get = tr.tools.turns[0]!.calls[2]!;
  assert.equal(get.actionItem!.kind, 'GET');
  assert.equal(get.resultItem!.kind, 'get-response');
  assert.match(get.resultItem!.body!, /^\{\n {2}"resourceType": "Bundle",/);
  // a text reply that reads like an action is shown as the text it was
  const t71 = (await (await app.request('/api/runs/1/tasks/task7_1')).json()) as {
    items: Array<{ kind: string; findings: string[] }>;
    tools: { turns: Array<{ turn: number; findings: string[] }> };
  };
  assert.deepEqual(
    t71.items.map((i) => i.kind),
    ['prompt', 'invalid'],
  );
  assert.deepEqual(
    t71.tools.turns.map((t) => [t.turn, t.findings]),
    [[1, ['prose']]],
  );
});

test('a manifest protocol the report does not know: one line naming the file', async () => {
  const dir = join(tmp, 'bad-protocol');
  await run('bad-protocol', createAgent('finish-empty'), 'tools', { set: subset('task2_1') });
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  summary.manifest.protocol = 'carrier-pigeon';
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary));
  assert.throws(
    () => loadRuns([dir], () => {}),
    (e: unknown) => e instanceof RunFolderError && /summary\.json: manifest "protocol" must be one of text, tools, mcp, got "carrier-pigeon"$/.test(e.message),
  );
  const r = await cli('report', dir, '--out', join(tmp, 'bad-out'));
  assert.equal(r.code, 2);
  assert.equal(r.err.split('\n').length, 2);
});
