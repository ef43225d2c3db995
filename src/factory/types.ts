import type { TaskCase } from '../tasks/types.js';

/** One chat turn of a canonical row. Roles follow the OpenAI chat format (`agent` → `assistant`); no system turn. */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** Where a row came from. */
export type RowOrigin = 'expert' | 'collected';

/** Per-row metadata (ignored by trainers; stripped for strict validators). Keys are snake_case as in the hand-off doc. */
export interface RowMeta {
  /** Stable row id inside the corpus (e.g. `task5-s1-000042`). */
  row_id: string;
  task_family: string;
  task_id: string;
  /** Branch label (same vocabulary as expected_answers_v2.DERIVED.json). */
  branch: string;
  /** Patient MRN the task is about (absent for task1 "Patient not found" cases). */
  patient: string | null;
  /** The world the trajectory was produced (or re-executed) against. */
  world: { name: string; seed: number | null; patients: number | null; fingerprint: string; suite?: string };
  /** The task record (id, instruction, context, [sol], [eval_MRN]) needed to re-execute and re-grade the row. */
  task: TaskCase;
  solver_version: string;
  grader_version: string;
  harness_version: string;
  /** sha256 of the normalized conversation (see `contentHash`). */
  content_sha256: string;
  origin: RowOrigin;
  /** Augmentations applied (empty = none): `paraphrase`, `variant:<name>`. */
  augmentation: string[];
  /** Expert rows: the sandbox session the episode ran in (searchset Bundle ids depend on it, as in `ehrgym eval`). */
  session?: string;
  /** For collected rows: the source run file and episode index. */
  source?: { file: string; index: number };
  verified: true;
  /** Tools corpora only: `tools` (text rows carry no protocol key: the text protocol is the default). */
  protocol?: 'tools';
}

export interface CanonicalRow {
  messages: ChatMessage[];
  meta: RowMeta;
}

/** The corpus protocols: `text` (the official one, default) or `tools` (OpenAI function calling). */
export const CORPUS_PROTOCOLS = ['text', 'tools'] as const;
export type CorpusProtocol = (typeof CORPUS_PROTOCOLS)[number];

/** One tool call of a tools row (OpenAI Chat Completions shape; `arguments` is the JSON text the call carries). */
export interface RowToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * One message of a tools row: the native transcript of a `tools` episode (OpenAI Chat Completions messages) — the
 * task as one user message, each assistant turn one tool call, each environment answer a `tool` message.
 */
export type ToolsMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls: RowToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

/** A row of a tools corpus (`meta.protocol` is `tools`). */
export interface ToolsRow {
  messages: ToolsMessage[];
  meta: RowMeta;
}

/** A row of either protocol. */
export type CorpusRow = CanonicalRow | ToolsRow;

export function isToolsRow(r: CorpusRow): r is ToolsRow {
  return r.meta.protocol === 'tools';
}

/** Why an instance or row was not kept. */
export interface DropRecord {
  stage: 'solve' | 'grade' | 'collect' | 'dedup' | 'pollution' | 'length';
  reason: string;
  task_id?: string;
  family?: string;
  row_id?: string;
  source?: string;
}
