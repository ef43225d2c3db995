import type { TrialStats } from './passk.js';
import type { GradeResult, TaskOutput } from '../tasks/types.js';

/**
 * A run folder (written by `ehrgym eval`, read by `ehrgym grade`, `report`, `view`, `generate --collect`):
 *
 *   runs.jsonl     AgentBench-compatible, one line per finished task: {index, error, info, output: TaskOutput, time}
 *   error.jsonl    AgentBench-compatible, samples whose agent failed (may be absent)
 *   overall.json   AgentBench-compatible: {total, validation: {...}, custom: {"success rate", raw_results}}
 *   summary.json   RunSummary (ours)
 *   grades.jsonl   one GradedTask per line, in task order (ours; re-derivable with `ehrgym grade`); samples that
 *                  only appear in error.jsonl are listed with status `running`, correct false
 *   manifest.json  RunManifest, written first; `--resume` refuses when it differs
 *   episodes.jsonl one line per finished episode: {index, rounds, promptTokens, completionTokens, ms} (ours)
 *
 * runs.jsonl, error.jsonl and episodes.jsonl are append-only (one write per line, fdatasync'd); the other files are
 * derived and rewritten atomically when a run completes. Statuses in runs.jsonl are the raw SampleStatus values;
 * overall.json's raw_results carry the AgentBench `Correct`/`Incorrect` suffix. grades.jsonl and summary.json use the
 * same statuses except `model empty reply` for an `agent invalid action` whose last reply was empty (`runStatus`).
 */
export interface RunsLine {
  index: number;
  /** Runs of several trials per task only (1-based). */
  trial?: number;
  error: string | null;
  info: string | null;
  output: TaskOutput;
  time: { timestamp: number; str: string };
}

export interface GradedTask {
  index: number;
  /** Runs with several trials per task only (1-based). */
  trial?: number;
  id: string;
  family: string;
  status: string;
  correct: boolean;
  grade: GradeResult;
  /** Rounds used (agent turns), tokens, wall ms for this episode. */
  rounds: number;
  promptTokens?: number;
  completionTokens?: number;
  ms?: number;
}

export interface RunManifest {
  harnessVersion: string;
  /** `path`: a task file's absolute path (absent for the bundled sets, addressed by name). */
  taskSet: { name: string; sha256: string; count: number; path?: string };
  promptTemplateSha256: string;
  functionsSha256: string;
  /** The embedded world (`seed` and `patients`: synthetic worlds), or the external server. */
  world: { name: string; seed?: number; patients?: number; fingerprint: string } | { fhirUrl: string };
  apiBase: string;
  /** The agent protocol (`text`: the official one; `tools`: OpenAI function calling; `mcp`: MCP tools); absent in run folders made before protocols were a choice: `text`. */
  protocol?: 'text' | 'tools' | 'mcp';
  /** `tools` / `mcp`: tool calls left as `<tool_call>` text were read as tool calls. */
  recoverToolText?: boolean;
  postMode: 'official' | 'live';
  maxRounds: number;
  /** Episodes per task (absent: one). */
  trials?: number;
  agent: { name: string; config: Record<string, unknown> };
  filter?: { families?: string[]; limit?: number };
  /**
   * A shard of a run (`--shard i/N`, 0-based): its index, the shard count and the run's configuration hash
   * (`runConfigHash`, the same for every shard of one run). Absent in unsharded and merged runs.
   */
  shard?: { index: number; count: number; config: string };
}

/** Success rates over a set of graded tasks (`scoreTasks`). */
export interface TaskScores {
  correct: number;
  successRate: number;
  querySR: number;
  actionSR: number;
  /** Per family, in first-seen task order. */
  perFamily: Record<string, { correct: number; total: number; sr: number }>;
}

export interface RunSummary extends TaskScores {
  total: number;
  statusCounts: Record<string, number>;
  tokens: { prompt: number; completion: number };
  wallMs: number;
  manifest: RunManifest;
  /** Runs with several trials per task: pass@k, pass^k, consistency (src/eval/passk.ts). */
  trialStats?: TrialStats;
}
