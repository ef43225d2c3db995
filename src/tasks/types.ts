import type { FhirTransport } from '../fhir/types.js';

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

/** AgentBench TaskOutput: what an episode produced. `result` is the FINISH string, `{error}` for task error, or null. */
export interface TaskOutput {
  index: number | null;
  status: SampleStatus | string;
  result: string | { error: string } | null;
  history: HistoryItem[] | null;
}

/** One named grader check with the values it compared, so reports can explain a failure. */
export interface GradeCheck {
  name: string;
  pass: boolean;
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
}

/** What a grader may use: the advertised API base (exact string) and a way to GET from the FHIR server. */
export interface GraderContext {
  apiBase: string;
  fhir: FhirTransport;
}
