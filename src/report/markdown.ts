/** report.md */
import { BEHAVIOURS } from './behaviours.js';
import { clip, pct, protocolLabel, pval, SCORE_COLUMNS, scoreRow, statusRows, signed, signedPct, TOOL_ROWS, trialRows, usesTools } from './format.js';
import { comparable } from './leaderboard.js';
import { familyLabel } from './families.js';
import { FAILURE_CLASSES } from '../tasks/checkpoints.js';
import type { AssistantTurn, CaseSide, CaseStudy, LeaderboardTable, ReportData, RunAnalysis } from './types.js';

/**
 * Text from the run folders (model output, labels, statuses, task ids) as inert Markdown: `<`, `>` and entity-like
 * `&` are HTML-escaped, Markdown punctuation is backslash-escaped (no link, image, emphasis or code span can form),
 * and line breaks become spaces, so the text stays on its line and inside its table cell.
 */
export const mdText = (s: string): string =>
  s
    .replace(/[\\`*_[\]|~#]/g, '\\$&')
    .replace(/&(?=#?[A-Za-z0-9]+;)/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r\n?|\n/g, ' ');

/** A code span holding `s` literally (outside tables): its fence is longer than any backtick run inside. */
export const mdCode = (s: string): string => {
  const one = s.replace(/\r\n?|\n/g, ' ');
  if (one.trim() === '') return '(empty)';
  const longest = Math.max(0, ...[...one.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  const pad = /^[ `]|[ `]$/.test(one) ? ' ' : '';
  return `${f}${pad}${one}${pad}${f}`;
};

/** A Markdown table; cells are Markdown already (model text passed through mdText). */
const table = (head: string[], rows: string[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
/** A fenced code block whose fence is longer than any backtick run in `s` (so `s` cannot close it). */
const fence = (s: string): string => {
  const longest = Math.max(2, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}\n${s}\n${f}`;
};
const title = (id: string): string => BEHAVIOURS.find((b) => b.id === id)!.title;

/** A family as listed: `task5 — magnesium check and IV replacement` (the id alone for a family the registry lacks). */
const fam = (id: string): string => mdText(familyLabel(id));

/** Clinical-suite runs: failure classes per family and each task's partial credit (nothing for MedAgentBench runs). */
function checkpointsMd(runs: RunAnalysis[]): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const c = r.checkpoints;
    if (!c) continue;
    out.push(
      '',
      `### Checkpoints: ${mdText(r.label)}`,
      '',
      'Checkpoint-graded tasks (the clinical suite): the mean fraction of checkpoints passed, and how many episodes failed first at a checkpoint of each class.',
      '',
    );
    out.push(
      table(
        ['Family', 'Correct', 'Mean score', ...FAILURE_CLASSES],
        c.perFamily.map((f) => [fam(f.family), `${f.correct}/${f.tasks}`, f.meanScore.toFixed(3), ...FAILURE_CLASSES.map((k) => String(f.classes[k] ?? 0))]),
      ),
      '',
      table(
        ['Task', 'Branch', 'Score', 'Failure class', 'First failed checkpoint'],
        c.tasks.map((t) => [mdText(t.id), mdText(t.branch), t.score.toFixed(3), t.failureClass ?? '—', t.firstFailed ? mdText(t.firstFailed) : '—']),
      ),
    );
  }
  return out;
}

export function scoresSection(runs: RunAnalysis[]): string {
  const out: string[] = ['## Scores', ''];
  out.push(
    table(
      SCORE_COLUMNS,
      runs.map((r) => {
        const row = scoreRow(r, mdText);
        return [...row.texts, ...row.numbers];
      }),
    ),
  );
  const families = runs[0]!.scores.perFamily.map((f) => f.family);
  out.push('', '### Per family', '', 'Success rate (correct/total) and its 95% Wilson interval.', '');
  out.push(
    table(
      ['Family', ...runs.map((r) => mdText(r.label))],
      families.map((id) => [
        fam(id),
        ...runs.map((r) => {
          const f = r.scores.perFamily.find((x) => x.family === id);
          return f ? `${pct(f.sr)} (${f.correct}/${f.total}; ${pct(f.ci95.low)} – ${pct(f.ci95.high)})` : '—';
        }),
      ]),
    ),
  );
  out.push(...checkpointsMd(runs));
  out.push('', '### Status', '');
  out.push(
    table(
      ['Status', ...runs.map((r) => mdText(r.label))],
      statusRows(runs).map(([name, f]) => [name, ...runs.map((r) => `${f(r)} (${pct(f(r) / r.scores.total)})`)]),
    ),
  );
  const trials = trialRows(runs);
  if (trials.length > 0) {
    out.push(
      '',
      '### Trials',
      '',
      'Runs with several trials per task: pass@k (unbiased estimator, Chen et al. 2021), pass^k (τ-bench: all k trials pass), the share of tasks whose trials agree. The task views above and below read trial 1.',
      '',
    );
    out.push(
      table(
        ['Measure', ...runs.map((r) => mdText(r.label))],
        trials.map(([name, cells]) => [name, ...cells]),
      ),
    );
    for (const r of runs.filter((x) => x.inconsistent && x.inconsistent.length > 0)) {
      const shown = r.inconsistent!.slice(0, 30).map((t) => `${mdCode(t.id)} ${t.outcomes}`);
      out.push('', `${mdText(r.label)}: trials disagree on ${r.inconsistent!.length} task(s): ${shown.join(', ')}${r.inconsistent!.length > 30 ? ', …' : ''}`);
    }
  }
  if (usesTools(runs)) {
    out.push('', '### Tool calls', '', 'How the tools and MCP runs called the tools (text runs: —).', '');
    out.push(
      table(
        ['Count', ...runs.map((r) => mdText(r.label)), 'What it counts'],
        TOOL_ROWS.map(([name, what, f]) => [name, ...runs.map((r) => (r.tools ? mdText(f(r.tools)) : '—')), mdText(what)]),
      ),
    );
  }
  return out.join('\n');
}

/** The leaderboard rows of one table with the comparable runs placed among them, best first. */
export function leaderboardRows(data: ReportData, t: LeaderboardTable) {
  const rows = t.rows.map((r) => ({
    name: r.model + (r.size && r.size !== 'N/A' ? ` (${r.size})` : ''),
    overall: r.overall,
    q: r.query,
    a: r.action,
    mark: r.confirmed ? '' : (r.note ?? 'unconfirmed'),
    source: r.source ?? '',
    run: false,
  }));
  for (const r of data.runs.filter((x) => comparable(x, t)))
    rows.push({
      name: r.protocol === 'text' ? r.label : `${r.label} (${protocolLabel(r)} protocol)`,
      overall: r.scores.successRate,
      q: r.scores.query.total ? r.scores.query.sr : null,
      a: r.scores.action.total ? r.scores.action.sr : null,
      mark: '',
      source: '',
      run: true,
    });
  return rows.sort((x, y) => y.overall - x.overall);
}

export function leaderboardSection(data: ReportData): string {
  const out: string[] = ['## Leaderboard', ''];
  out.push(
    'Published MedAgentBench results beside the runs of this report. Rows marked *unconfirmed* were not checked against the paper table; third-party runs are public repositories, not peer reviewed.',
    '',
  );
  for (const t of data.leaderboard.tables) {
    out.push(`### ${mdText(t.title)}`, '', `Source: ${mdText(t.source)}`, '');
    const rows = leaderboardRows(data, t);
    const perRow = t.rows.some((r) => r.source);
    out.push(
      table(
        ['#', 'Model', 'Overall', 'Query', 'Action', 'Note', ...(perRow ? ['Source'] : [])],
        rows.map((r, i) => [
          String(i + 1),
          r.run ? `**${mdText(r.name)}** (this report)` : mdText(r.name),
          pct(r.overall, 2),
          r.q === null ? '—' : pct(r.q, 2),
          r.a === null ? '—' : pct(r.a, 2),
          r.mark ? `*${mdText(r.mark)}*` : '',
          ...(perRow ? [mdText(r.source)] : []),
        ]),
      ),
      '',
    );
  }
  const other = data.runs.filter((r) => !data.leaderboard.tables.some((t) => comparable(r, t)));
  if (other.length)
    out.push(
      `Not placed in a table (task set differs from every published table): ${other.map((r) => `${mdText(r.label)} (${mdText(r.taskSet)}, ${r.scores.total} tasks, ${pct(r.scores.successRate)})`).join('; ')}. The chart shows them for orientation only.`,
      '',
    );
  return out.join('\n');
}

export function behaviourSection(runs: RunAnalysis[]): string {
  const out: string[] = ['## Behaviour analysis', ''];
  out.push('Counted from the histories: number of tasks showing each behaviour (occurrences in brackets when a task shows it more than once).', '');
  out.push(
    table(
      ['Behaviour', ...runs.map((r) => mdText(r.label))],
      BEHAVIOURS.map((b) => [
        mdText(b.title),
        ...runs.map((r) => {
          const s = r.behaviours.find((x) => x.behaviour === b.id)!;
          return s.occurrences > s.tasks ? `${s.tasks} (${s.occurrences})` : String(s.tasks);
        }),
      ]),
    ),
  );
  out.push('', BEHAVIOURS.map((b) => `- **${mdText(b.title)}**: ${mdText(b.description)}`).join('\n'));
  for (const r of runs) {
    const fams = r.scores.perFamily.map((f) => f.family);
    const shown = r.behaviours.filter((b) => b.tasks > 0);
    out.push('', `### ${mdText(r.label)}: per family`, '');
    if (shown.length === 0) {
      out.push('No behaviour detected.');
      continue;
    }
    out.push(
      table(
        ['Behaviour', ...fams.map(mdText), 'All'],
        shown.map((b) => [mdText(title(b.behaviour)), ...fams.map((f) => String(b.perFamily[f] ?? 0)), String(b.tasks)]),
      ),
    );
    out.push('', `Families: ${fams.map(fam).join('; ')}.`);
    out.push('', `#### ${mdText(r.label)}: examples`, '');
    for (const b of shown) {
      out.push(`- **${mdText(title(b.behaviour))}**`);
      for (const e of b.examples) out.push(`  - ${mdCode(e.taskId)}${e.turn >= 0 ? ` (history item ${e.turn})` : ''}: ${mdText(e.evidence)}`);
    }
  }
  return out.join('\n');
}

/** The first line of a text (a POST action's URL line). */
export const firstLine = (s: string): string => {
  const nl = s.indexOf('\n');
  return nl < 0 ? s : `${s.slice(0, nl)} …`;
};

/** `3 tool calls in one reply` */
export const callCount = (n: number): string => (n === 0 ? 'no tool call' : n === 1 ? '1 tool call' : `${n} tool calls in one reply`);

/** One tools / mcp reply: its text, then each call (name, arguments) with its answer; history item numbers in front. */
function toolTurnMd(t: AssistantTurn, out: string[]): void {
  out.push(`*assistant*, message ${t.message}: ${callCount(t.calls.length)}`, '');
  if (t.calls.length === 0) {
    out.push(`${t.turn !== undefined ? `${t.turn}. ` : ''}*reply text*`, '', fence(clip(t.content ?? '', 1200)), '');
    return;
  }
  if (t.content !== null && t.content.trim() !== '') out.push('*text beside the calls*', '', fence(clip(t.content, 1200)), '');
  for (const c of t.calls) {
    const marks = [
      c.kind === 'tool-error' ? `**tool error** (${c.error})` : '',
      c.kind === 'not-executed' ? 'not executed (after finish)' : '',
      c.recovered ? 'recovered from text' : '',
    ].filter(Boolean);
    out.push(`${c.turn !== undefined ? `${c.turn}. ` : ''}*tool call* ${mdCode(c.name)}${marks.length ? ` — ${marks.join(', ')}` : ''}`, '');
    out.push(fence(clip(c.pretty, 1200)), '');
    if (c.action !== undefined) out.push(`as the text protocol's action: ${mdCode(clip(firstLine(c.action), 300))}`, '');
    if (c.result !== undefined) out.push(`${c.resultIndex !== undefined ? `${c.resultIndex}. ` : ''}*tool result*`, '', fence(clip(c.result, 1200)), '');
  }
}

function caseStudyMd(c: CaseStudy, baseLabel: string, otherLabel: string): string {
  const out: string[] = [`#### ${mdCode(c.taskId)} (${fam(c.family)}) — ${c.change}`, ''];
  if (c.instruction !== undefined) out.push('Task instruction:', '', fence(clip(c.instruction, 1200)), '');
  out.push(`Trajectories from the first divergence (history item ${c.divergence}).`, '');
  const side = (label: string, s: CaseSide): void => {
    out.push(`**${mdText(label)}** — ${mdText(s.status)}, ${s.correct ? 'correct' : 'incorrect'}`, '');
    if (s.items.length === 0 && !s.turns?.length) out.push('(no further items)', '');
    if (s.turns) {
      for (const it of s.items.filter((x) => x.index === 0)) out.push(`${it.index}. *${mdText(it.role)}*`, '', fence(clip(it.content, 1200)), '');
      for (const t of s.turns) toolTurnMd(t, out);
      return;
    }
    for (const it of s.items) out.push(`${it.index}. *${mdText(it.role)}*`, '', fence(clip(it.content, 1200)), '');
  };
  side(baseLabel, c.base);
  side(otherLabel, c.other);
  return out.join('\n');
}

/** Shown instead of the comparison when there is one run. */
export const ONE_RUN_NOTE =
  'One run only: nothing to compare. Give two or more run folders over the same tasks for a paired comparison (per-family deltas, McNemar test, fixed and broken tasks, case studies).';

export function comparisonSection(data: ReportData): string {
  if (data.comparisons.length === 0) return ['## Comparison', '', ONE_RUN_NOTE].join('\n');
  const out: string[] = ['## Comparison', ''];
  for (const c of data.comparisons) {
    out.push(`### ${mdText(c.other)} vs ${mdText(c.base)}`, '');
    if (c.protocols.base !== c.protocols.other) {
      out.push(
        `Protocols: ${mdText(c.base)} ${c.protocols.base}, ${mdText(c.other)} ${c.protocols.other}. The same actions get the same verdict in either; trajectories are compared on their text-protocol histories after the prompt.`,
        '',
      );
    }
    out.push(
      `Overall: ${signedPct(c.overallDelta)}. Paired exact McNemar test: ${c.mcnemar.fixed} fixed, ${c.mcnemar.broken} broken, two-sided p = ${pval(c.mcnemar.pValue)}.`,
      '',
    );
    out.push(
      table(
        ['Family', mdText(c.base), mdText(c.other), 'Δ'],
        c.perFamily.map((f) => [fam(f.family), pct(f.base), pct(f.other), signedPct(f.delta)]),
      ),
      '',
    );
    out.push(`**Fixed** (${c.fixed.length}): ${c.fixed.length ? c.fixed.map(mdCode).join(', ') : 'none'}`, '');
    out.push(`**Broken** (${c.broken.length}): ${c.broken.length ? c.broken.map(mdCode).join(', ') : 'none'}`, '');
    out.push(
      table(
        ['Behaviour', mdText(c.base), mdText(c.other), 'Δ'],
        c.behaviourDeltas.map((d) => [mdText(title(d.behaviour)), String(d.base), String(d.other), signed(d.delta)]),
      ),
      '',
    );
    if (c.caseStudies.length) {
      out.push('#### Case studies', '');
      for (const cs of c.caseStudies) out.push(caseStudyMd(cs, c.base, c.other));
    }
  }
  return out.join('\n');
}

export function renderMarkdown(data: ReportData): string {
  const runs = data.runs;
  const head = [
    '# ehrgym report',
    '',
    `Runs: ${runs.map((r) => `${mdCode(r.label)} (${mdText(r.agent)}, ${mdText(protocolLabel(r))} protocol, ${mdText(r.taskSet)}, ${r.scores.total} tasks)`).join(', ')}.`,
    '',
    'Charts are in report.html.',
  ].join('\n');
  return [head, scoresSection(runs), leaderboardSection(data), behaviourSection(runs), comparisonSection(data)].filter(Boolean).join('\n\n') + '\n';
}
