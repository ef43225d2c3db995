import type { RunAnalysis } from './types.js';
/** Number formatting shared by the Markdown and HTML renderers. */
export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
export const signedPct = (x: number, digits = 1): string => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(x * 100).toFixed(digits)} pp`;
export const signed = (n: number): string => (n > 0 ? `+${n}` : n < 0 ? `−${-n}` : '0');
export const num = (x: number, digits = 1): string => x.toFixed(digits);
/** p-values: 4 significant digits, scientific below 1e-4. */
export const pval = (p: number): string => (p === 1 ? '1' : p >= 1e-4 ? p.toPrecision(4) : p.toExponential(3));
export const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);

/** The columns of the scores table (report.md and report.html). */
export const SCORE_COLUMNS = [
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
];

/**
 * One run's row of the scores table: its three text cells passed through `text` (escaping for the target format),
 * then the eight numeric cells, plain.
 */
export function scoreRow(r: RunAnalysis, text: (s: string) => string): { texts: string[]; numbers: string[] } {
  const s = r.scores;
  return {
    texts: [text(r.label), text(r.agent), text(r.taskSet)],
    numbers: [
      String(s.total),
      `${pct(s.successRate)} (${s.correct}/${s.total})`,
      `${pct(s.ci95.low)} – ${pct(s.ci95.high)}`,
      s.query.total ? `${pct(s.query.sr)} (${s.query.correct}/${s.query.total})` : '—',
      s.action.total ? `${pct(s.action.sr)} (${s.action.correct}/${s.action.total})` : '—',
      num(s.avgRounds, 2),
      num(s.avgPromptTokens, 0),
      num(s.avgCompletionTokens, 0),
    ],
  };
}

/** The rows of the status table (report.md and report.html): a name and how many episodes of a run ended so. */
export const STATUS_ROWS: ReadonlyArray<readonly [string, (r: RunAnalysis) => number]> = [
  ['completed', (r) => r.scores.status.completed],
  ['invalid action', (r) => r.scores.status.invalidAction],
  ['round limit', (r) => r.scores.status.roundLimit],
  ['context limit', (r) => r.scores.status.contextLimit],
  ['error', (r) => r.scores.status.error],
];
