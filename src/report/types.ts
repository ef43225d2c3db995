import type { TrialStats } from '../eval/passk.js';
import type { GradedTask, RunSummary, RunsLine } from '../eval/types.js';
import type { GradeResult, TaskOutput } from '../tasks/types.js';
import type { Protocol } from '../protocol/action.js';
import type { AssistantTurn, ToolUsage } from './transcript.js';

export type { Protocol } from '../protocol/action.js';
export type { AssistantTurn, ToolCallKind, ToolCallView, ToolErrorKind, ToolUsage } from './transcript.js';

/** What the analysis knows about one task (derived from the run folder: grades + the prompt in the history). */
export interface TaskInfo {
  id: string;
  family: string;
  /** `query` families (task1, 2, 4, 6, 7) must not POST; `action` families (3, 5, 8, 9, 10) may. */
  kind: 'query' | 'action' | 'unknown';
  /** The patient the task is about (`eval_MRN`), taken from the instruction when it names one. */
  mrn?: string;
  instruction?: string;
  context?: string;
  /** The API base the prompt advertised (exact string, trailing slash). */
  apiBase: string;
}

/** One task of a loaded run: the grade line joined with the AgentBench output. */
export interface RunTask {
  index: number;
  info: TaskInfo;
  graded: GradedTask;
  output: TaskOutput;
  /** The AgentBench line (absent for samples that only appear in error.jsonl). */
  line?: RunsLine;
  /** A run of several trials per task (`eval --trials`): every trial's outcome (the task views show trial 1). */
  trials?: Array<{ trial: number; correct: boolean; status: string }>;
}

/** A run folder read and validated. */
export interface LoadedRun {
  /** Folder as given on the command line (resolved). */
  dir: string;
  /** Short label: the folder name, made unique across compared runs. */
  label: string;
  summary: RunSummary;
  /** The agent protocol the run was made with (manifest `protocol`; absent: `text`). */
  protocol: Protocol;
  tasks: RunTask[];
}

export type BehaviourId =
  | 'prose'
  | 'think'
  | 'fence'
  | 'finish-not-json'
  | 'invalid-post-json'
  | 'wrong-post-url'
  | 'post-in-read-only'
  | 'fabricated-action'
  | 'self-contradiction'
  | 'stale-value'
  | 'wrong-patient'
  | 'round-limit'
  | 'context-limit';

/** One detected occurrence: which history item shows it and a short piece of evidence. */
export interface Finding {
  behaviour: BehaviourId;
  /** Index into `output.history` (or -1 when the finding is about the episode as a whole). */
  turn: number;
  evidence: string;
}

/** A detector is a pure function of one episode. */
export type Detector = (task: TaskInfo, output: TaskOutput, grade: GradeResult) => Finding[];

export interface Interval {
  low: number;
  high: number;
}

export interface FamilyScore {
  family: string;
  /** The family's short name from the task registry (absent for a family the registry does not know). */
  name?: string;
  correct: number;
  total: number;
  sr: number;
  /** 95% Wilson interval of `sr`. */
  ci95: Interval;
}

/**
 * How the episodes ended. `model empty reply` and `model tool call in text` (our statuses for an `agent invalid
 * action` ending on an empty reply / on tool-call markup left in the text) are counted in `raw` under those names and
 * in none of the buckets; `error` is every other status.
 */
export interface StatusBreakdown {
  completed: number;
  invalidAction: number;
  roundLimit: number;
  contextLimit: number;
  error: number;
  /** Statuses as grades.jsonl records them (`runStatus`). */
  raw: Record<string, number>;
}

export interface RunScores {
  total: number;
  correct: number;
  successRate: number;
  ci95: Interval;
  query: { correct: number; total: number; sr: number };
  action: { correct: number; total: number; sr: number };
  perFamily: FamilyScore[];
  status: StatusBreakdown;
  avgRounds: number;
  avgPromptTokens: number;
  avgCompletionTokens: number;
}

export interface BehaviourExample {
  taskId: string;
  turn: number;
  evidence: string;
}

export interface BehaviourStats {
  behaviour: BehaviourId;
  /** Number of tasks showing the behaviour. */
  tasks: number;
  /** Number of occurrences (a task may show it several times). */
  occurrences: number;
  perFamily: Record<string, number>;
  examples: BehaviourExample[];
}

export interface RunAnalysis {
  label: string;
  dir: string;
  agent: string;
  taskSet: string;
  /** The agent protocol (manifest `protocol`; absent: `text`). */
  protocol: Protocol;
  scores: RunScores;
  /** `tools` / `mcp` runs: how the model used the tools (tool errors, parallel calls, calls recovered from text). */
  tools?: ToolUsage;
  /** Runs of several trials per task: pass@k, pass^k, consistency (summary.json's `trialStats`). */
  trialStats?: TrialStats;
  /** Runs of several trials per task: the tasks whose trials disagree, with their outcomes (`✓✗✓`). */
  inconsistent?: Array<{ id: string; outcomes: string }>;
  behaviours: BehaviourStats[];
  /** Findings per task id (only tasks with at least one finding). */
  findings: Record<string, Finding[]>;
  /** Runs with clinical-suite tasks (graded into checkpoints): partial credit and failure classes. */
  checkpoints?: CheckpointSummary;
}

/** A run's checkpoint-graded tasks (the clinical suite): per family and per task. */
export interface CheckpointSummary {
  /** Per family: tasks, correct, mean checkpoint score, episodes per failure class (of the first failed checkpoint). */
  perFamily: Array<{ family: string; tasks: number; correct: number; meanScore: number; classes: Record<string, number> }>;
  /** Per task (trial 1), in run order. */
  tasks: Array<{ id: string; branch: string; score: number; failureClass: string | null; firstFailed: string | null }>;
}

export interface McNemar {
  /** Tasks correct in the baseline and wrong in the other run. */
  broken: number;
  /** Tasks wrong in the baseline and correct in the other run. */
  fixed: number;
  /** Exact two-sided binomial p-value on the discordant pairs. */
  pValue: number;
}

/** One run's side of a case study: the history items from the divergence on. */
export interface CaseSide {
  status: string;
  correct: boolean;
  items: { index: number; role: string; content: string }[];
  /**
   * `tools` / `mcp` runs: the replies that made those items, as the model wrote them (tool calls with their arguments
   * and answers); the renderers show these instead of the items (and item 0, the prompt, when it is among them).
   */
  turns?: AssistantTurn[];
}

export interface CaseStudy {
  taskId: string;
  family: string;
  change: 'fixed' | 'broken';
  /** The task's instruction (the prompt's question), when the history records it. */
  instruction?: string;
  /**
   * Index of the first history item whose content differs (from item 1 when the runs' protocols differ: their prompts
   * differ by design).
   */
  divergence: number;
  base: CaseSide;
  other: CaseSide;
}

export interface Comparison {
  base: string;
  other: string;
  /** The two runs' protocols (a text run and a tools run of one agent compare like any two runs). */
  protocols: { base: Protocol; other: Protocol };
  overallDelta: number;
  perFamily: { family: string; base: number; other: number; delta: number }[];
  mcnemar: McNemar;
  fixed: string[];
  broken: string[];
  behaviourDeltas: { behaviour: BehaviourId; base: number; other: number; delta: number }[];
  caseStudies: CaseStudy[];
}

export interface LeaderboardRow {
  model: string;
  size?: string;
  form?: string;
  overall: number;
  query: number | null;
  action: number | null;
  confirmed: boolean;
  note?: string;
  /** Where this row's figure was published (repository, file or paper), when it differs per row. */
  source?: string;
}

export interface LeaderboardTable {
  id: string;
  title: string;
  taskSet: string;
  tasks: number;
  source: string;
  rows: LeaderboardRow[];
}

export interface Leaderboard {
  description: string;
  tables: LeaderboardTable[];
}

export interface ReportData {
  runs: RunAnalysis[];
  comparisons: Comparison[];
  leaderboard: Leaderboard;
}
