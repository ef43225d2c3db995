/** report.html: one self-contained page (inline CSS and SVG; no script, no network). */
import { FAILURE_CLASSES } from '../tasks/checkpoints.js';
import { BEHAVIOURS } from './behaviours.js';
import { clip, pct, protocolLabel, pval, SCORE_COLUMNS, scoreRow, statusRows, signed, signedPct, TOOL_ROWS, trialRows, usesTools } from './format.js';
import { GET_OK_PREFIX } from '../protocol/text.js';
import { familyLabel } from './families.js';
import { comparable } from './leaderboard.js';
import { callCount, firstLine, leaderboardRows, ONE_RUN_NOTE } from './markdown.js';
import type { AssistantTurn, CaseSide, CaseStudy, ReportData, RunAnalysis, ToolCallView } from './types.js';

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export const REPORT_CSS = `
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);background:#fff}
header{background:#24292f;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px}
h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:6px;margin-top:36px}
h3{font-size:15px;margin:24px 0 8px}
h4{font-size:14px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.run td{background:#fff8c5;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:220px;background:#fff}
.card .label{color:var(--muted);font-size:12px}
.card .big{font-size:28px;font-weight:600}
.card .sub{color:var(--muted);font-size:12px}
.chart{margin:8px 0 20px;overflow-x:auto}
.chart svg{max-width:100%;height:auto}
.muted{color:var(--muted)}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;border:1px solid var(--line);background:var(--bg)}
.pill.ok{color:var(--ok);border-color:#aceebb;background:#dafbe1}
.pill.bad{color:var(--bad);border-color:#ffcecb;background:#ffebe9}
.pos{color:var(--ok)} .neg{color:var(--bad)}
.ids code{margin-right:4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;white-space:pre-wrap;word-break:break-word;margin:4px 0}
.side{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.side>div{min-width:0}
.turn{margin:6px 0}
.turn .who{font-size:12px;color:var(--muted)}
details summary{cursor:pointer;color:var(--accent);font-size:12px}
ul.examples{margin:4px 0 12px;padding-left:20px}
.instruction{border-left:3px solid var(--accent);background:var(--bg);padding:6px 10px;margin:6px 0 10px}
.instruction .who{font-size:12px;color:var(--muted)}
.reply{border:1px solid var(--line);border-radius:6px;padding:4px 8px;margin:6px 0}
.reply>.who{font-size:12px;color:var(--muted)}
.call{border-left:3px solid var(--accent);padding:0 0 0 8px;margin:6px 0}
.call.error{border-left-color:var(--bad)}
.call.skipped{opacity:.6}
`;

const table = (head: string[], rows: string[][], rowClass?: (i: number) => string): string =>
  `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r, i) => `<tr${rowClass?.(i) ? ` class="${rowClass(i)}"` : ''}>${r.map((c) => (c.startsWith('<td') ? c : `<td>${c}</td>`)).join('')}</tr>`)
    .join('')}</tbody></table>`;
const n = (s: string): string => `<td class="n">${s}</td>`;
const title = (id: string): string => BEHAVIOURS.find((b) => b.id === id)!.title;
const deltaCls = (x: number): string => (x > 0 ? 'pos' : x < 0 ? 'neg' : '');
const fam = (id: string): string => esc(familyLabel(id));
/** A chart, or the sentence saying why there is none (nothing to plot). */
const chart = (svg: string | null, empty: string): string => (svg === null ? `<p class="muted no-chart">${esc(empty)}</p>` : `<div class="chart">${svg}</div>`);

function cards(runs: RunAnalysis[]): string {
  return `<div class="cards">${runs
    .map((r) => {
      const s = r.scores;
      return `<div class="card"><div class="label">${esc(r.label)} · ${esc(r.agent)} · ${esc(protocolLabel(r))}</div><div class="big">${pct(s.successRate)}</div>
<div class="sub">${s.correct}/${s.total} tasks · 95% CI ${pct(s.ci95.low)}–${pct(s.ci95.high)}</div>
<div class="sub">query ${s.query.total ? pct(s.query.sr) : '—'} · action ${s.action.total ? pct(s.action.sr) : '—'}</div></div>`;
    })
    .join('')}</div>`;
}

function scores(runs: RunAnalysis[], familySvg: string | null): string {
  const out: string[] = ['<h2 id="scores">Scores</h2>', cards(runs)];
  out.push(
    table(
      SCORE_COLUMNS,
      runs.map((r) => {
        const row = scoreRow(r, esc);
        return [...row.texts, ...row.numbers.map(n)];
      }),
    ),
  );
  out.push(chart(familySvg, 'No task family to plot.'));
  const families = runs[0]!.scores.perFamily.map((f) => f.family);
  out.push(
    '<h3>Per family</h3><p class="muted">Success rate (correct/total) and its 95% Wilson interval; the chart draws the interval as an error bar.</p>',
    table(
      ['Family', ...runs.map((r) => esc(r.label))],
      families.map((id) => [
        fam(id),
        ...runs.map((r) => {
          const f = r.scores.perFamily.find((x) => x.family === id);
          return n(f ? `${pct(f.sr)} (${f.correct}/${f.total}; ${pct(f.ci95.low)}–${pct(f.ci95.high)})` : '—');
        }),
      ]),
    ),
  );
  for (const r of runs) {
    const c = r.checkpoints;
    if (!c) continue;
    out.push(
      `<h3>Checkpoints: ${esc(r.label)}</h3><p class="muted">Checkpoint-graded tasks (the clinical suite): the mean fraction of checkpoints passed, and how many episodes failed first at a checkpoint of each class.</p>`,
      table(
        ['Family', 'Correct', 'Mean score', ...FAILURE_CLASSES],
        c.perFamily.map((f) => [
          fam(f.family),
          n(`${f.correct}/${f.tasks}`),
          n(f.meanScore.toFixed(3)),
          ...FAILURE_CLASSES.map((k) => n(String(f.classes[k] ?? 0))),
        ]),
      ),
      table(
        ['Task', 'Branch', 'Score', 'Failure class', 'First failed checkpoint'],
        c.tasks.map((t) => [esc(t.id), esc(t.branch), n(t.score.toFixed(3)), esc(t.failureClass ?? '—'), esc(t.firstFailed ?? '—')]),
      ),
    );
  }
  out.push(
    '<h3>Status</h3>',
    table(
      ['Status', ...runs.map((r) => esc(r.label))],
      statusRows(runs).map(([name, f]) => [name, ...runs.map((r) => n(`${f(r)} (${pct(f(r) / r.scores.total)})`))]),
    ),
  );
  const trials = trialRows(runs);
  if (trials.length > 0) {
    out.push(
      '<h3 id="trials">Trials</h3><p class="muted">Runs with several trials per task: pass@k (unbiased estimator, Chen et al. 2021), pass^k (τ-bench: all k trials pass), the share of tasks whose trials agree. The task views read trial 1.</p>',
      table(
        ['Measure', ...runs.map((r) => esc(r.label))],
        trials.map(([name, cells]) => [esc(name), ...cells.map((c) => n(esc(c)))]),
      ),
    );
    for (const r of runs.filter((x) => x.inconsistent && x.inconsistent.length > 0)) {
      const shown = r.inconsistent!.slice(0, 30).map((t) => `<code>${esc(t.id)}</code> ${esc(t.outcomes)}`);
      out.push(`<p>${esc(r.label)}: trials disagree on ${r.inconsistent!.length} task(s): ${shown.join(', ')}${r.inconsistent!.length > 30 ? ', …' : ''}</p>`);
    }
  }
  if (usesTools(runs)) {
    out.push(
      '<h3 id="tool-calls">Tool calls</h3><p class="muted">How the tools and MCP runs called the tools (text runs: —).</p>',
      table(
        ['Count', ...runs.map((r) => esc(r.label)), 'What it counts'],
        TOOL_ROWS.map(([name, what, f]) => [name, ...runs.map((r) => n(r.tools ? esc(f(r.tools)) : '—')), `<span class="muted">${esc(what)}</span>`]),
      ),
    );
  }
  return out.join('\n');
}

function leaderboard(data: ReportData, svg: string | null): string {
  const out: string[] = [
    '<h2 id="leaderboard">Leaderboard</h2>',
    '<p class="muted">Published MedAgentBench results beside the runs of this report. Rows marked <em>unconfirmed</em> were not checked against the paper table; third-party runs are public repositories, not peer reviewed.</p>',
    chart(svg, 'No 300-task published table to plot.'),
  ];
  const other = data.runs.filter((r) => !data.leaderboard.tables.some((t) => comparable(r, t)));
  if (other.length) {
    out.push(
      `<p class="muted">Not placed in a table (task set differs from every published table): ${other.map((r) => `${esc(r.label)} (${esc(r.taskSet)}, ${r.scores.total} tasks, ${pct(r.scores.successRate)})`).join('; ')}. The chart shows them for orientation only.</p>`,
    );
  }
  for (const t of data.leaderboard.tables) {
    const rows = leaderboardRows(data, t);
    const perRow = t.rows.some((r) => r.source);
    out.push(`<h3>${esc(t.title)}</h3><p class="muted">Source: ${esc(t.source)}</p>`);
    out.push(
      table(
        ['#', 'Model', 'Overall', 'Query', 'Action', 'Note', ...(perRow ? ['Source'] : [])],
        rows.map((r, i) => [
          n(String(i + 1)),
          r.run ? `${esc(r.name)} (this report)` : esc(r.name),
          n(pct(r.overall, 2)),
          n(r.q === null ? '—' : pct(r.q, 2)),
          n(r.a === null ? '—' : pct(r.a, 2)),
          r.mark ? `<em>${esc(r.mark)}</em>` : '',
          ...(perRow ? [`<span class="muted">${esc(r.source)}</span>`] : []),
        ]),
        (i) => (rows[i]!.run ? 'run' : ''),
      ),
    );
  }
  return out.join('\n');
}

function behaviours(runs: RunAnalysis[], svg: string | null): string {
  const out: string[] = [
    '<h2 id="behaviours">Behaviour analysis</h2>',
    '<p class="muted">Counted from the histories: number of tasks showing each behaviour (occurrences in brackets when a task shows it more than once).</p>',
    chart(svg, `No behaviour detected in ${runs.length > 1 ? 'any run' : 'the run'}: nothing to chart.`),
  ];
  out.push(
    table(
      ['Behaviour', 'What it means', ...runs.map((r) => esc(r.label))],
      BEHAVIOURS.map((b) => [
        `<strong>${esc(b.title)}</strong>`,
        `<span class="muted">${esc(b.description)}</span>`,
        ...runs.map((r) => {
          const s = r.behaviours.find((x) => x.behaviour === b.id)!;
          return n(s.occurrences > s.tasks ? `${s.tasks} (${s.occurrences})` : String(s.tasks));
        }),
      ]),
    ),
  );
  for (const r of runs) {
    const fams = r.scores.perFamily.map((f) => f.family);
    const shown = r.behaviours.filter((b) => b.tasks > 0);
    out.push(`<h3>${esc(r.label)}: per family</h3>`);
    if (!shown.length) {
      out.push('<p>No behaviour detected.</p>');
      continue;
    }
    out.push(
      table(
        ['Behaviour', ...fams.map(esc), 'All'],
        shown.map((b) => [esc(title(b.behaviour)), ...fams.map((f) => n(String(b.perFamily[f] ?? 0))), n(String(b.tasks))]),
      ),
      `<p class="muted">Families: ${fams.map(fam).join('; ')}.</p>`,
    );
    out.push(`<h4>${esc(r.label)}: examples</h4>`);
    for (const b of shown) {
      out.push(
        `<div><strong>${esc(title(b.behaviour))}</strong><ul class="examples">${b.examples
          .map((e) => `<li><code>${esc(e.taskId)}</code>${e.turn >= 0 ? ` <span class="muted">history item ${e.turn}</span>` : ''}: ${esc(e.evidence)}</li>`)
          .join('')}</ul></div>`,
      );
    }
  }
  return out.join('\n');
}

function itemHtml(it: { index: number; role: string; content: string }): string {
  const head = `<div class="who">${it.index}. ${esc(it.role)}</div>`;
  if (it.role === 'user' && it.content.startsWith(GET_OK_PREFIX) && it.content.length > 400) {
    return `<div class="turn">${head}<details><summary>GET response (${it.content.length} characters)</summary><pre>${esc(clip(it.content, 6000))}</pre></details></div>`;
  }
  return `<div class="turn">${head}<pre>${esc(clip(it.content, 3000))}</pre></div>`;
}

/** A tool call's answer: collapsed when long (as GET responses are). */
function resultHtml(c: ToolCallView): string {
  if (c.result === undefined) return '';
  const head = `<div class="who">${c.resultIndex !== undefined ? `${c.resultIndex}. ` : ''}tool result</div>`;
  if (c.result.length > 400) {
    return `${head}<details class="tool-result"><summary>${c.result.startsWith(GET_OK_PREFIX) ? 'GET response' : 'Tool result'} (${c.result.length} characters)</summary><pre>${esc(clip(c.result, 6000))}</pre></details>`;
  }
  return `${head}<pre class="tool-result">${esc(c.result)}</pre>`;
}

function callHtml(c: ToolCallView): string {
  const marks = [
    c.kind === 'tool-error' ? `<span class="pill bad">tool error: ${esc(c.error ?? '')}</span>` : '',
    c.kind === 'not-executed' ? '<span class="pill">not executed (after finish)</span>' : '',
    c.recovered ? '<span class="pill">recovered from text</span>' : '',
  ].join('');
  const cls = c.kind === 'tool-error' ? ' error' : c.kind === 'not-executed' ? ' skipped' : '';
  const action = c.action !== undefined ? `<div class="who">as the text protocol's action: <code>${esc(clip(firstLine(c.action), 300))}</code></div>` : '';
  return `<div class="call${cls}"><div class="who">${c.turn !== undefined ? `${c.turn}. ` : ''}tool call <code>${esc(c.name)}</code> ${marks}</div><pre class="tool-args">${esc(
    clip(c.pretty, 3000),
  )}</pre>${action}${resultHtml(c)}</div>`;
}

/** One tools / mcp reply: its text, then its calls (grouped when it made several) with their answers. */
function turnHtml(t: AssistantTurn): string {
  const head = `<div class="who">assistant, message ${t.message}: ${callCount(t.calls.length)}</div>`;
  if (t.calls.length === 0) {
    return `<div class="reply">${head}<div class="who">${t.turn !== undefined ? `${t.turn}. ` : ''}reply text</div><pre>${esc(clip(t.content ?? '', 3000))}</pre></div>`;
  }
  const text =
    t.content !== null && t.content.trim() !== ''
      ? `<div class="who">text beside the calls</div><pre class="assistant-text">${esc(clip(t.content, 3000))}</pre>`
      : '';
  return `<div class="reply">${head}${text}${t.calls.map(callHtml).join('')}</div>`;
}

function sideItems(s: CaseSide): string {
  if (s.turns)
    return (
      s.items
        .filter((it) => it.index === 0)
        .map(itemHtml)
        .join('') + s.turns.map(turnHtml).join('')
    );
  return s.items.map(itemHtml).join('');
}

function caseStudy(c: CaseStudy, baseLabel: string, otherLabel: string): string {
  const side = (label: string, s: CaseSide): string =>
    `<div><h4>${esc(label)} <span class="pill ${s.correct ? 'ok' : 'bad'}">${s.correct ? 'correct' : 'incorrect'}</span> <span class="muted">${esc(s.status)}</span></h4>${
      s.items.length || s.turns?.length ? sideItems(s) : '<p class="muted">(no further items)</p>'
    }</div>`;
  const instruction =
    c.instruction !== undefined ? `<div class="instruction"><div class="who">Task instruction</div><pre>${esc(clip(c.instruction, 3000))}</pre></div>` : '';
  return `<h4>${esc(c.taskId)} <span class="muted">(${fam(c.family)})</span> <span class="pill ${c.change === 'fixed' ? 'ok' : 'bad'}">${c.change}</span></h4>
${instruction}<p class="muted">Both trajectories from the first divergence (history item ${c.divergence}).</p><div class="side">${side(baseLabel, c.base)}${side(otherLabel, c.other)}</div>`;
}

function comparisons(data: ReportData): string {
  const out: string[] = ['<h2 id="comparison">Comparison</h2>'];
  if (!data.comparisons.length) return `${out[0]}<p class="muted no-chart">${esc(ONE_RUN_NOTE)}</p>`;
  for (const c of data.comparisons) {
    out.push(`<h3>${esc(c.other)} vs ${esc(c.base)}</h3>`);
    if (c.protocols.base !== c.protocols.other) {
      out.push(
        `<p class="muted protocols">Protocols: ${esc(c.base)} ${esc(c.protocols.base)}, ${esc(c.other)} ${esc(c.protocols.other)}. The same actions get the same verdict in either; trajectories are compared on their text-protocol histories after the prompt.</p>`,
      );
    }
    out.push(`<div class="cards"><div class="card"><div class="label">Overall change</div><div class="big ${deltaCls(c.overallDelta)}">${signedPct(c.overallDelta)}</div></div>
<div class="card"><div class="label">Exact McNemar (two-sided)</div><div class="big">p = ${pval(c.mcnemar.pValue)}</div><div class="sub">${c.mcnemar.fixed} fixed · ${c.mcnemar.broken} broken</div></div></div>`);
    out.push(
      table(
        ['Family', esc(c.base), esc(c.other), 'Δ'],
        c.perFamily.map((f) => [fam(f.family), n(pct(f.base)), n(pct(f.other)), `<td class="n ${deltaCls(f.delta)}">${signedPct(f.delta)}</td>`]),
      ),
    );
    out.push(
      `<p class="ids"><strong>Fixed (${c.fixed.length}):</strong> ${c.fixed.length ? c.fixed.map((id) => `<code>${esc(id)}</code>`).join(' ') : 'none'}</p>`,
    );
    out.push(
      `<p class="ids"><strong>Broken (${c.broken.length}):</strong> ${c.broken.length ? c.broken.map((id) => `<code>${esc(id)}</code>`).join(' ') : 'none'}</p>`,
    );
    out.push(
      table(
        ['Behaviour', esc(c.base), esc(c.other), 'Δ'],
        c.behaviourDeltas.map((d) => [
          esc(title(d.behaviour)),
          n(String(d.base)),
          n(String(d.other)),
          `<td class="n ${deltaCls(-d.delta)}">${signed(d.delta)}</td>`,
        ]),
      ),
    );
    if (c.caseStudies.length) out.push('<h3>Case studies</h3>', ...c.caseStudies.map((cs) => caseStudy(cs, c.base, c.other)));
  }
  return out.join('\n');
}

/** The rendered SVG charts; null where there is nothing to plot (the report says so in a sentence). */
export interface ReportCharts {
  family: string | null;
  leaderboard: string | null;
  behaviours: string | null;
}

export function renderHtml(data: ReportData, charts: ReportCharts): string {
  const runs = data.runs;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ehrgym report — ${esc(runs.map((r) => r.label).join(' vs '))}</title>
<style>${REPORT_CSS}</style></head>
<body><header><h1>ehrgym report</h1><p>${runs.map((r) => `${esc(r.label)} (${esc(r.agent)}, ${esc(protocolLabel(r))} protocol, ${esc(r.taskSet)}, ${r.scores.total} tasks)`).join(' · ')}</p></header>
<main>
<nav class="muted"><a href="#scores">Scores</a> · <a href="#leaderboard">Leaderboard</a> · <a href="#behaviours">Behaviours</a> · <a href="#comparison">Comparison</a></nav>
${scores(runs, charts.family)}
${leaderboard(data, charts.leaderboard)}
${behaviours(runs, charts.behaviours)}
${comparisons(data)}
</main></body></html>
`;
}
