import type { FhirTransport } from '../fhir/types.js';
import type { FailureClass } from './checkpoints.js';
import type { PlantedFacts, PlantRequest, Planting } from '../worlds/synthetic.js';
import type { DialectName } from '../protocol/dialect.js';

/** One task record exactly as in the official task files (key order id, instruction, context, [sol], [eval_MRN]). */
export interface TaskCase {
  id: string;
  instruction: string;
  context: string;
  sol?: string[];
  eval_MRN?: string;
}

/** A history item as the official harness records it (roles `user` / `agent`; raw agent text). */
export interface HistoryItem {
  role: 'user' | 'agent';
  content: string;
}

/** The official SampleStatus values. */
export type SampleStatus =
  | 'running'
  | 'completed'
  | 'agent context limit'
  | 'agent validation failed'
  | 'agent invalid action'
  | 'task limit reached'
  | 'unknown'
  | 'task error';

/** A tool call in an OpenAI Chat Completions message (`tool_calls[i]`). */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A message of the OpenAI Chat Completions format: the native transcript of a `tools` or `mcp` episode. */
export type ChatMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: ChatToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/**
 * AgentBench TaskOutput: what an episode produced. `result` is the FINISH string, `{error}` for task error, or null.
 * `history` is the official text-protocol history; in the `tools` and `mcp` protocols it is the same history rebuilt
 * from the tool calls (each executed action as the text reply that performs it, then what the environment answered),
 * which the graders and reports read, and `messages` holds the native transcript.
 */
export interface TaskOutput {
  index: number | null;
  status: SampleStatus | string;
  result: string | { error: string } | null;
  history: HistoryItem[] | null;
  /** `tools` / `mcp` only: the OpenAI-format transcript the model saw and wrote. */
  messages?: ChatMessage[];
  /** `tools` / `mcp` only: tool calls recovered from `<tool_call>` text in the reply content (`--recover-tool-text`). */
  recoveredToolCalls?: number;
}

/** One named grader check with the values it compared, so reports can explain a failure. */
export interface GradeCheck {
  name: string;
  pass: boolean;
  /** Clinical-suite checkpoints: the class of failure this check stands for (src/tasks/checkpoints.ts). */
  class?: FailureClass;
  expected?: unknown;
  actual?: unknown;
  note?: string;
}

export interface GradeResult {
  /** Verdict identical to the official grader's (`is True`). */
  correct: boolean;
  /** Branch label as in expected_answers_v2.DERIVED.json (e.g. `low_order_required`). */
  branch?: string;
  /** The reference answer the grader computed (e.g. `[1.8]`). */
  reference?: unknown;
  checks: GradeCheck[];
  /** Set when the official grader would have raised (counts as incorrect). */
  exception?: string;
  /** Clinical suite: the fraction of checkpoints passed (partial credit). */
  score?: number;
  /** Clinical suite: the class of the first failed checkpoint. */
  failureClass?: FailureClass;
}

/** What a grader may use: the advertised API base (exact string) and a way to GET from the FHIR server. */
export interface GraderContext {
  apiBase: string;
  fhir: FhirTransport;
  /**
   * A fresh scratch session on the world (end-state grading replays the episode's writes into it; src/tasks/endstate.ts).
   * The caller closes it.
   */
  openSession?: (name: string) => Promise<{ transport: FhirTransport; close(): Promise<void> }>;
}

/**
 * The id of a registered family (the grader is selected by `id.split('_')[0]`): derived from the list in
 * `registry.ts`, so a new family is not added here. Narrow a string with `isFamilyId`.
 */
export type { FamilyId } from './registry.js';

/** Query families read only; action families may or must POST. */
export type TaskKind = 'query' | 'action';

/** Read access to a world, as used by generators (and graders): the advertised API base and a FHIR transport. */
export type WorldAccess = GraderContext;

/** Any seeded random source with `next()` in [0, 1) (e.g. `Rng` from src/worlds/prng.ts). */
export interface RandomSource {
  next(): number;
}

export interface GenerateOptions {
  rng: RandomSource;
  /** Candidate patient MRNs (e.g. a world's non-evaluation patients). Order matters only through the rng shuffle. */
  patients: readonly string[];
  /** Only emit instances of this branch (labels of expected_answers_v2.DERIVED.json). */
  branch?: string;
  /** Maximum number of instances (default: one per usable patient). */
  count?: number;
  /** Number of the first generated id (`task5_<startIndex>`); default 1. */
  startIndex?: number;
}

/** One generated task instance with the branch determined from the world's data. */
export interface GeneratedTask {
  task: TaskCase;
  branch: string;
  /** The MRN the task is about, or null (task1 "Patient not found"). */
  patient: string | null;
  /** The data the branch was derived from (reference value, times, dose, …). */
  facts: Record<string, unknown>;
}

export interface SolveOptions {
  /** The api_base advertised to the agent (exact string). Default `http://localhost:8080/fhir/`. */
  apiBase?: string;
  /** Named solution path (see `TaskFamily.variants`); default `'default'`. */
  variant?: string;
}

/**
 * What a family's synthetic-world branches rely on being planted (`src/worlds/synthetic.ts`): the task lab codes whose
 * boundary scenarios the world plants itself (`labs`), other labs with the scenarios the family brings (`extra`, facts
 * in `PlantedFacts.labs`), and whether it needs near-duplicate patients. `'none'` states that the family reads nothing
 * the world plants on purpose (any patient serves every branch).
 */
export type PlantedNeeds = Partial<PlantRequest> | 'none';

/** What the report's behaviour detectors (`src/report/behaviours.ts`, `src/report/load.ts`) know about a family. */
export interface DetectorHints {
  /** The instruction names the patient by MRN (task1 names them by name and DOB instead). */
  mrnInInstruction: boolean;
  /** The answer is a patient's MRN (compared with the reference to flag a wrong patient). */
  answerIsMrn: boolean;
  /** The answer is a value read from the record, not computed (a value that no GET returned is fabricated). */
  retrievedValue: boolean;
  /** The answer is the latest reading of a code (a wrong value another GET returned is a stale one). */
  latestValue: boolean;
}

/** What the SFT factory (`src/factory/`) knows about a family. */
export interface FactoryHints {
  /**
   * Position in the order in which families receive the remainder of `--size / families` (and a short family's
   * deficit): lower first. Action families come first ("a poor writer").
   */
  remainderRank: number;
  /** Instances may reuse a patient another instance of the family already used (task1's near-duplicates). */
  reusePatients: boolean;
  /**
   * The branch a synthetic patient's planted facts put them in (candidate ordering for branch-balanced synthesis), or
   * null when the planted facts do not decide it (then the generator scans every patient).
   */
  branchOf(facts: PlantedFacts): string | null;
  /** Boundary coverage tags of a row on a synthetic world (`MG@24h00`, `K=3.4`), for the dataset card. */
  boundaryTags(facts: PlantedFacts): string[];
  /**
   * The expert variant of a corpus's base rows, when the family names one (default: `sorted` or `window` where the
   * family has it, else its first variant): the one with short observations, so rows fit a trainer's context.
   */
  primaryVariant?: string;
}

/**
 * What the degenerate policies of `ehrgym audit` (src/eval/audit.ts, src/agent/backends/degenerate.ts) do on a
 * family. Both parts are explicit: `null` states that the family has no such answer or action.
 */
export interface AuditHooks {
  /**
   * The answer list the family gives when the record holds nothing to report (`[-1]` for "no measurement", task1
   * `["Patient not found"]`), which `finish-nothing-found` sends at once; null when the family has none (then that
   * policy sends `FINISH([])`).
   */
  nothingFound: readonly unknown[] | null;
  /**
   * `always-act`: the next message of a policy that performs the family's action whatever the data (reads nothing,
   * sends the acting branch's payloads with any data-dependent part fixed, then `FINISH([])`), in the form of
   * `solve`; null for a family with no action (a query family; then that policy sends `FINISH([])`). An action family
   * must define it.
   */
  alwaysAct: ((task: TaskCase, history: readonly HistoryItem[], opts?: SolveOptions) => string) | null;
}

/**
 * A task family as code: templates, generator, expert solver, the official grader, and what the world, the report and
 * the factory need to know about it. One file per family (`src/tasks/taskN.ts`) plus one line in `registry.ts`;
 * `test/tasks-family-contract.test.ts` checks every part is present.
 */
export interface TaskFamily<Id extends string = string> {
  /** `task<N>` for MedAgentBench; a lower-case word for a suite family (`warfarin`). Task ids are `<id>_<k>`. */
  id: Id;
  /**
   * The task set the family belongs to: absent for MedAgentBench's ten; `ehrgym-clinical` for the clinical suite
   * (`SuiteFamily`). Suite families are addressed by their set (`--tasks ehrgym-clinical`), never by MedAgentBench's.
   */
  suite?: string;
  /**
   * The protocol dialect its episodes speak (src/protocol/dialect.ts): absent means `medagentbench` (the official
   * protocol); suite families speak `ehrgym` (PUT updates, the suite's functions). Every protocol (text, tools, MCP,
   * the environment server, reports, factory rows) chooses the dialect per task from its family.
   */
  dialect?: DialectName;
  /** Short human name, e.g. `latest magnesium within 24 h`. */
  name: string;
  kind: TaskKind;
  /** The exact instruction template(s); placeholders `{MRN}` (task1: `{NAME}`, `{DOB}`). */
  instructionTemplates: readonly string[];
  /** The exact context string shared by every task of the family. */
  context: string;
  /** Branch labels this family can produce. */
  branches: readonly string[];
  /** Named solver variants; the first is the default. */
  variants: readonly string[];
  /**
   * Model turns the default expert policy takes on this family's tasks (its GETs and POSTs, then FINISH), fewest and
   * most over the branches. The eval scheduler's prior for how long an episode of the family runs.
   */
  turns: { readonly min: number; readonly max: number };
  /** The record key an official task record of this family must carry: `sol` (task1) or `eval_MRN`. */
  recordKey: 'sol' | 'eval_MRN';
  /**
   * Paraphrased instruction templates (augmentation). Same placeholders as the templates; contexts and protocol
   * strings stay official.
   */
  paraphrases: readonly string[];
  /** The placeholder values of a task's instruction (`{MRN: …}`, task1 `{NAME, DOB}`), or null when they are not found. */
  placeholders(task: TaskCase): Record<string, string> | null;
  /** What the synthetic world must plant for this family's branches. */
  planted: PlantedNeeds;
  detector: DetectorHints;
  factory: FactoryHints;
  /** Render the instruction for a patient (task1 takes name/dob and `notFound` for the ASCII-apostrophe form). */
  instruction(params: { mrn?: string; name?: string; dob?: string; notFound?: boolean }): string;
  /** Generate new instances over a world; branches are determined by querying the world. Deterministic per rng. */
  generate(world: WorldAccess, opts: GenerateOptions): Promise<GeneratedTask[]>;
  /**
   * Expert policy: the next raw agent message for `task` given the history so far (GET responses as the harness
   * records them). Throws `SolverError` when the history is not one the policy produced (e.g. a GET error).
   */
  solve(task: TaskCase, history: readonly HistoryItem[], opts?: SolveOptions): string;
  /** The official grader's verdict with named checks, branch and reference. Never throws. */
  grade(task: TaskCase, output: TaskOutput, ctx: GraderContext): Promise<GradeResult>;
  /**
   * Required by the contract (`familyProblems` refuses a family without it; optional only in the type): what the
   * degenerate policies of `ehrgym audit` do on this family.
   */
  audit?: AuditHooks;
}

/**
 * A clinical-suite family: one file (`src/tasks/suite/<id>.ts`) plus one line in the registry's `SUITE_BUILT_IN`.
 * Beyond `TaskFamily` it names its rule and source, plants its own records into the clinical world, and grades the
 * episode's end state (`replayEndState`) into checkpoints with failure classes (`gradeCheckpoints`). The contract
 * (`familyProblems`) refuses a suite family missing any of these parts.
 */
export interface SuiteFamily<Id extends string = string> extends TaskFamily<Id> {
  suite: string;
  dialect: 'ehrgym';
  /** The published clinical rule the family checks, and where it is published (docs/tasks.md cites both). */
  rule: { name: string; source: string };
  /**
   * Checkpoint names per branch, in the order an expert works; `grade` returns exactly these checks for a task of that
   * branch (reward components of the environment server, mutation tests per checkpoint).
   */
  checkpoints: Readonly<Record<string, readonly string[]>>;
  /** What the family writes into the clinical world (a `Planting` of src/worlds/synthetic.ts: name, version, plant). */
  planting: Planting;
}
