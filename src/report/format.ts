import { MODEL_EMPTY_REPLY, MODEL_TOOL_TEXT } from '../eval/score.js';
import type { RunAnalysis, ToolUsage } from './types.js';
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
  'Protocol',
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

/** A run's protocol as the report names it: `text`, `tools`, `mcp`, with `+ recovery` for `--recover-tool-text`. */
export const protocolLabel = (r: Pick<RunAnalysis, 'protocol' | 'tools'>): string => `${r.protocol}${r.tools?.recoverToolText ? ' + recovery' : ''}`;

/**
 * One run's row of the scores table: its four text cells passed through `text` (escaping for the target format),
 * then the eight numeric cells, plain.
 */
export function scoreRow(r: RunAnalysis, text: (s: string) => string): { texts: string[]; numbers: string[] } {
  const s = r.scores;
  return {
    texts: [text(r.label), text(r.agent), text(protocolLabel(r)), text(r.taskSet)],
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

const raw = (r: RunAnalysis, status: string): number => r.scores.status.raw[status] ?? 0;

/**
 * The rows of the status table (report.md and report.html): a name and how many episodes of a run ended so.
 * `empty reply` and `tool call in text` are `agent invalid action`s in the AgentBench files (`runStatus`); the second
 * row is shown when a run of the report used tools or had such an ending.
 */
export const STATUS_ROWS: ReadonlyArray<readonly [string, (r: RunAnalysis) => number, ((runs: RunAnalysis[]) => boolean)?]> = [
  ['completed', (r) => r.scores.status.completed],
  ['invalid action', (r) => r.scores.status.invalidAction],
  ['empty reply', (r) => raw(r, MODEL_EMPTY_REPLY)],
  ['tool call in text', (r) => raw(r, MODEL_TOOL_TEXT), (runs) => runs.some((r) => r.protocol !== 'text' || raw(r, MODEL_TOOL_TEXT) > 0)],
  ['round limit', (r) => r.scores.status.roundLimit],
  ['context limit', (r) => r.scores.status.contextLimit],
  ['error', (r) => r.scores.status.error],
];

/** The status rows shown for these runs. */
export const statusRows = (runs: RunAnalysis[]): Array<readonly [string, (r: RunAnalysis) => number]> =>
  STATUS_ROWS.filter(([, , shown]) => !shown || shown(runs)).map(([name, f]) => [name, f] as const);

/** `n (k episodes)`, or `0`. */
const inEpisodes = (x: { calls: number; episodes: number }): string =>
  x.calls === 0 ? '0' : `${x.calls} (${x.episodes} episode${x.episodes === 1 ? '' : 's'})`;

/**
 * The rows of the tool-call table (tools / mcp runs; a text run's cells are `—`): a name, what it counts and a run's
 * cell. Shown when a run of the report used tools.
 */
export const TOOL_ROWS: ReadonlyArray<readonly [string, string, (u: ToolUsage) => string]> = [
  ['tool calls', 'calls the model made, in all replies', (u) => String(u.calls)],
  ['replies with tool calls', 'assistant replies holding at least one call', (u) => String(u.callReplies)],
  ['parallel calls', 'replies with more than one call (run in order)', (u) => String(u.parallelReplies)],
  ['text beside calls', 'replies with text as well as calls', (u) => String(u.textBesideCalls)],
  ['replies without calls', 'text-only replies (each ends its episode)', (u) => String(u.textReplies)],
  ['tool errors: unknown tool', 'calls to a tool that does not exist (answered with an error; the episode goes on)', (u) => inEpisodes(u.unknownTool)],
  [
    'tool errors: bad arguments',
    'calls whose arguments the tool cannot use: not a JSON object, a wrong type, finish without answer',
    (u) => inEpisodes(u.badArguments),
  ],
  ['calls after finish', 'calls in the reply after finish (not executed)', (u) => String(u.notExecuted)],
  [
    'recovered from text',
    'calls read from <tool_call> text the server left in the reply (--recover-tool-text)',
    (u) => (u.recoverToolText ? inEpisodes(u.recovered) : 'off'),
  ],
];

/** Whether the report needs the tool-call table. */
export const usesTools = (runs: RunAnalysis[]): boolean => runs.some((r) => r.tools !== undefined);

/**
 * The Trials table of runs made with `eval --trials`: per k, pass@k (unbiased estimator, Chen et al. 2021) and pass^k
 * (τ-bench), then consistency and pass@1's interval; `—` for runs without trials or with fewer than k.
 */
export function trialRows(runs: RunAnalysis[]): Array<[string, string[]]> {
  const withTrials = runs.filter((r) => r.trialStats);
  if (withTrials.length === 0) return [];
  const maxK = Math.max(...withTrials.map((r) => r.trialStats!.trials));
  const cell = (r: RunAnalysis, f: (t: NonNullable<RunAnalysis['trialStats']>) => string | undefined) => (r.trialStats ? (f(r.trialStats) ?? '—') : '—');
  const rows: Array<[string, string[]]> = [['trials per task', runs.map((r) => cell(r, (t) => String(t.trials)))]];
  for (let k = 1; k <= maxK; k++) {
    rows.push([`pass@${k}`, runs.map((r) => cell(r, (t) => (t.passAtK[k] !== undefined ? pct(t.passAtK[k]) : undefined)))]);
  }
  for (let k = 1; k <= maxK; k++) {
    rows.push([`pass^${k}`, runs.map((r) => cell(r, (t) => (t.passHatK[k] !== undefined ? pct(t.passHatK[k]) : undefined)))]);
  }
  rows.push(['pass@1 95% interval', runs.map((r) => cell(r, (t) => `${pct(t.pass1Interval[0])} – ${pct(t.pass1Interval[1])}`))]);
  rows.push(['tasks whose trials agree', runs.map((r) => cell(r, (t) => pct(t.consistency)))]);
  return rows;
}
