/**
 * Scoring: AgentBench's `overall.json` (TaskClient.calculate_overall + MedAgentBench's calculate_overall) and our
 * `summary.json`.
 */
import type { TaskOutput } from '../tasks/types.js';
import { familyKind } from '../tasks/registry.js';
import { pyStrip } from '../agent/parser.js';
import { hasToolCallText } from '../protocol/tools.js';
import type { GradedTask, RunManifest, RunSummary, TaskScores } from './types.js';

/** SampleStatus values in their enum order (the key order of `validation`). */
export const SAMPLE_STATUSES = [
  'running',
  'completed',
  'agent context limit',
  'agent validation failed',
  'agent invalid action',
  'task limit reached',
  'unknown',
  'task error',
] as const;

/**
 * Our status for an episode that ended on an empty model reply (nothing but whitespace). The AgentBench files keep the
 * official `agent invalid action`; grades.jsonl, summary.json's statusCounts and `ehrgym grade` show this one.
 */
export const MODEL_EMPTY_REPLY = 'model empty reply';

/**
 * Our status for a `tools` / `mcp` episode that ended on a reply without tool calls whose text holds `<tool_call>`
 * markup (the server did not parse the model's tool call; `--recover-tool-text` reads it). The AgentBench files keep
 * `agent invalid action`.
 */
export const MODEL_TOOL_TEXT = 'model tool call in text';

/**
 * The status our own files record: the official one, except `model empty reply` and `model tool call in text`
 * (derived from the history).
 */
export function runStatus(output: TaskOutput): string {
  const status = String(output.status);
  if (status !== 'agent invalid action') return status;
  const last = output.history?.[output.history.length - 1];
  if (last?.role !== 'agent' || typeof last.content !== 'string') return status;
  if (pyStrip(last.content) === '') return MODEL_EMPTY_REPLY;
  return Array.isArray(output.messages) && hasToolCallText(last.content) ? MODEL_TOOL_TEXT : status;
}

export function familyOf(id: string): string {
  return id.split('_')[0];
}

export interface AgentBenchOverall {
  total: number;
  validation: Record<string, number>;
  custom: { 'success rate': number; raw_results: TaskOutput[] };
}

/** `overall.json` from the finished outputs (sorted by index) and their verdicts. */
export function agentBenchOverall(outputs: TaskOutput[], correct: (o: TaskOutput) => boolean): AgentBenchOverall {
  const n = outputs.length;
  const validation: Record<string, number> = {};
  for (const s of SAMPLE_STATUSES) validation[s] = 0;
  for (const o of outputs) validation[String(o.status)] = (validation[String(o.status)] ?? 0) + 1;
  if (n > 0) for (const k of Object.keys(validation)) validation[k] /= n;
  const lengths = outputs.map((o) => o.history?.length ?? 0);
  validation['average_history_length'] = n > 0 ? lengths.reduce((a, b) => a + b, 0) / n : 0;
  validation['max_history_length'] = n > 0 ? Math.max(...lengths) : 0;
  validation['min_history_length'] = n > 0 ? Math.min(...lengths) : 0;
  let good = 0;
  const raw = outputs.map((o) => {
    const ok = correct(o);
    if (ok) good++;
    return { ...o, status: `${o.status}${ok ? 'Correct' : 'Incorrect'}` };
  });
  return { total: n, validation, custom: { 'success rate': n > 0 ? good / n : 0, raw_results: raw } };
}

function sr(c: number, t: number): number {
  return t > 0 ? c / t : 0;
}

/** Success rates over `tasks` (overall, query/action split, per family); `correctAt(index)` is each task's verdict. */
export function scoreTasks(tasks: ReadonlyArray<{ index: number; id: string }>, correctAt: (index: number) => boolean): TaskScores {
  const perFamily: TaskScores['perFamily'] = {};
  let correct = 0;
  let qc = 0;
  let qt = 0;
  let ac = 0;
  let at = 0;
  for (const t of tasks) {
    const fam = familyOf(t.id);
    const ok = correctAt(t.index);
    const f = (perFamily[fam] ??= { correct: 0, total: 0, sr: 0 });
    f.total++;
    if (ok) {
      f.correct++;
      correct++;
    }
    const kind = familyKind(fam);
    if (kind === 'query') {
      qt++;
      if (ok) qc++;
    } else if (kind === 'action') {
      at++;
      if (ok) ac++;
    }
  }
  for (const f of Object.values(perFamily)) f.sr = sr(f.correct, f.total);
  return { correct, successRate: sr(correct, tasks.length), querySR: sr(qc, qt), actionSR: sr(ac, at), perFamily };
}

/**
 * `summary.json`. `selected` is every task the run was asked to do (episodes whose agent failed count as incorrect
 * and are reported under the status `agent failed`).
 */
export function summarize(
  graded: GradedTask[],
  selected: Array<{ index: number; id: string }>,
  manifest: RunManifest,
  wallMs: number,
): RunSummary & { agentFailures: number } {
  const byIndex = new Map(graded.map((g) => [g.index, g]));
  const scores = scoreTasks(selected, (index) => byIndex.get(index)?.correct === true);
  const statusCounts: Record<string, number> = {};
  let prompt = 0;
  let completion = 0;
  let failures = 0;
  for (const t of selected) {
    const g = byIndex.get(t.index);
    const status = g ? g.status : 'agent failed';
    if (!g) failures++;
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    prompt += g?.promptTokens ?? 0;
    completion += g?.completionTokens ?? 0;
  }
  const families = Object.keys(scores.perFamily).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)) || a.localeCompare(b));
  const orderedFamilies: RunSummary['perFamily'] = {};
  for (const k of families) orderedFamilies[k] = scores.perFamily[k];
  return {
    total: selected.length,
    correct: scores.correct,
    successRate: scores.successRate,
    querySR: scores.querySR,
    actionSR: scores.actionSR,
    perFamily: orderedFamilies,
    statusCounts,
    tokens: { prompt, completion },
    wallMs,
    agentFailures: failures,
    manifest,
  };
}
