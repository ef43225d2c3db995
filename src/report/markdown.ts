/** report.md */
import { BEHAVIOURS } from './behaviours.js';
import { clip, num, pct, pval, signed, signedPct } from './format.js';
import { comparable } from './leaderboard.js';
import type { CaseStudy, ReportData, RunAnalysis } from './types.js';

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const table = (head: string[], rows: string[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
const fence = (s: string): string => {
  const longest = Math.max(2, ...[...s.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}\n${s}\n${f}`;
};
const title = (id: string): string => BEHAVIOURS.find((b) => b.id === id)!.title;

export function scoresSection(runs: RunAnalysis[]): string {
  const out: string[] = ['## Scores', ''];
  out.push(
    table(
      [
        'Run',
        'Agent',
        'Task set',
        'Tasks',
        'Success rate',
        '95% CI (Wilson)',
        'Query SR',
        'Action SR',
        'Avg rounds',
        'Avg prompt tokens',
        'Avg completion tokens',
      ],
      runs.map((r) => {
        const s = r.scores;
        return [
          r.label,
          r.agent,
          r.taskSet,
          String(s.total),
          `${pct(s.successRate)} (${s.correct}/${s.total})`,
          `${pct(s.ci95.low)} – ${pct(s.ci95.high)}`,
          s.query.total ? `${pct(s.query.sr)} (${s.query.correct}/${s.query.total})` : '—',
          s.action.total ? `${pct(s.action.sr)} (${s.action.correct}/${s.action.total})` : '—',
          num(s.avgRounds, 2),
          num(s.avgPromptTokens, 0),
          num(s.avgCompletionTokens, 0),
        ];
      }),
    ),
  );
  const families = runs[0]!.scores.perFamily.map((f) => f.family);
  out.push('', '### Per family', '');
  out.push(
    table(
      ['Family', ...runs.map((r) => r.label)],
      families.map((fam) => [
        fam,
        ...runs.map((r) => {
          const f = r.scores.perFamily.find((x) => x.family === fam);
          return f ? `${pct(f.sr)} (${f.correct}/${f.total})` : '—';
        }),
      ]),
    ),
  );
  out.push('', '### Status', '');
  const rows: [string, (r: RunAnalysis) => number][] = [
    ['completed', (r) => r.scores.status.completed],
    ['invalid action', (r) => r.scores.status.invalidAction],
    ['round limit', (r) => r.scores.status.roundLimit],
    ['context limit', (r) => r.scores.status.contextLimit],
    ['error', (r) => r.scores.status.error],
  ];
  out.push(
    table(
      ['Status', ...runs.map((r) => r.label)],
      rows.map(([name, f]) => [name, ...runs.map((r) => `${f(r)} (${pct(f(r) / r.scores.total)})`)]),
    ),
  );
  return out.join('\n');
}

export function leaderboardSection(data: ReportData): string {
  const out: string[] = ['## Leaderboard', ''];
  out.push(
    'Published MedAgentBench results beside the runs of this report. Rows marked *unconfirmed* were not checked against the paper table; third-party runs are public repositories, not peer reviewed.',
    '',
  );
  for (const t of data.leaderboard.tables) {
    out.push(`### ${t.title}`, '', `Source: ${t.source}`, '');
    const rows = t.rows.map((r) => ({
      name: r.model + (r.size && r.size !== 'N/A' ? ` (${r.size})` : ''),
      overall: r.overall,
      q: r.query,
      a: r.action,
      mark: r.confirmed ? '' : (r.note ?? 'unconfirmed'),
      run: false,
    }));
    const same = data.runs.filter((r) => comparable(r, t));
    for (const r of same)
      rows.push({
        name: `**${r.label}** (this report)`,
        overall: r.scores.successRate,
        q: r.scores.query.total ? r.scores.query.sr : null,
        a: r.scores.action.total ? r.scores.action.sr : null,
        mark: '',
        run: true,
      });
    rows.sort((x, y) => y.overall - x.overall);
    out.push(
      table(
        ['#', 'Model', 'Overall', 'Query', 'Action', 'Note'],
        rows.map((r, i) => [
          String(i + 1),
          r.name,
          pct(r.overall, 2),
          r.q === null ? '—' : pct(r.q, 2),
          r.a === null ? '—' : pct(r.a, 2),
          r.mark ? `*${r.mark}*` : '',
        ]),
      ),
      '',
    );
  }
  const other = data.runs.filter((r) => !data.leaderboard.tables.some((t) => comparable(r, t)));
  if (other.length)
    out.push(
      `Not placed in a table (task set differs from every published table): ${other.map((r) => `${r.label} (${r.taskSet}, ${r.scores.total} tasks, ${pct(r.scores.successRate)})`).join('; ')}. The chart shows them for orientation only.`,
      '',
    );
  return out.join('\n');
}

export function behaviourSection(runs: RunAnalysis[]): string {
  const out: string[] = ['## Behaviour analysis', ''];
  out.push('Counted from the histories: number of tasks showing each behaviour (occurrences in brackets when a task shows it more than once).', '');
  out.push(
    table(
      ['Behaviour', ...runs.map((r) => r.label)],
      BEHAVIOURS.map((b) => [
        b.title,
        ...runs.map((r) => {
          const s = r.behaviours.find((x) => x.behaviour === b.id)!;
          return s.occurrences > s.tasks ? `${s.tasks} (${s.occurrences})` : String(s.tasks);
        }),
      ]),
    ),
  );
  out.push('', BEHAVIOURS.map((b) => `- **${b.title}**: ${b.description}`).join('\n'));
  for (const r of runs) {
    const fams = r.scores.perFamily.map((f) => f.family);
    const shown = r.behaviours.filter((b) => b.tasks > 0);
    out.push('', `### ${r.label}: per family`, '');
    if (shown.length === 0) {
      out.push('No behaviour detected.');
      continue;
    }
    out.push(
      table(
        ['Behaviour', ...fams, 'All'],
        shown.map((b) => [title(b.behaviour), ...fams.map((f) => String(b.perFamily[f] ?? 0)), String(b.tasks)]),
      ),
    );
    out.push('', `#### ${r.label}: examples`, '');
    for (const b of shown) {
      out.push(`- **${title(b.behaviour)}**`);
      for (const e of b.examples) out.push(`  - \`${e.taskId}\`${e.turn >= 0 ? ` (history item ${e.turn})` : ''}: ${esc(e.evidence)}`);
    }
  }
  return out.join('\n');
}

function caseStudyMd(c: CaseStudy, baseLabel: string, otherLabel: string): string {
  const out: string[] = [`#### ${c.taskId} (${c.family}) — ${c.change}`, '', `Trajectories from the first divergence (history item ${c.divergence}).`, ''];
  const side = (label: string, s: CaseStudy['base']): void => {
    out.push(`**${label}** — ${s.status}, ${s.correct ? 'correct' : 'incorrect'}`, '');
    if (s.items.length === 0) out.push('(no further items)', '');
    for (const it of s.items) out.push(`${it.index}. *${it.role}*`, '', fence(clip(it.content, 1200)), '');
  };
  side(baseLabel, c.base);
  side(otherLabel, c.other);
  return out.join('\n');
}

export function comparisonSection(data: ReportData): string {
  if (data.comparisons.length === 0) return '';
  const out: string[] = ['## Comparison', ''];
  for (const c of data.comparisons) {
    out.push(`### ${c.other} vs ${c.base}`, '');
    out.push(
      `Overall: ${signedPct(c.overallDelta)}. Paired exact McNemar test: ${c.mcnemar.fixed} fixed, ${c.mcnemar.broken} broken, two-sided p = ${pval(c.mcnemar.pValue)}.`,
      '',
    );
    out.push(
      table(
        ['Family', c.base, c.other, 'Δ'],
        c.perFamily.map((f) => [f.family, pct(f.base), pct(f.other), signedPct(f.delta)]),
      ),
      '',
    );
    out.push(`**Fixed** (${c.fixed.length}): ${c.fixed.length ? c.fixed.map((id) => `\`${id}\``).join(', ') : 'none'}`, '');
    out.push(`**Broken** (${c.broken.length}): ${c.broken.length ? c.broken.map((id) => `\`${id}\``).join(', ') : 'none'}`, '');
    out.push(
      table(
        ['Behaviour', c.base, c.other, 'Δ'],
        c.behaviourDeltas.map((d) => [title(d.behaviour), String(d.base), String(d.other), signed(d.delta)]),
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
    `Runs: ${runs.map((r) => `\`${r.label}\` (${r.agent}, ${r.taskSet}, ${r.scores.total} tasks)`).join(', ')}.`,
    '',
    'Charts are in report.html.',
  ].join('\n');
  return [head, scoresSection(runs), leaderboardSection(data), behaviourSection(runs), comparisonSection(data)].filter(Boolean).join('\n\n') + '\n';
}
