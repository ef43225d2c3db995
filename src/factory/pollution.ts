/**
 * Pollution (contamination) filter against an evaluation task set.
 *
 * A row is dropped when it
 *  1. mentions an evaluation patient's MRN anywhere (any turn, responses included);
 *  2. mentions an evaluation patient's name together with their birth date in one turn;
 *  3. repeats an evaluation (family, patient) pair;
 *  4. shares a long word n-gram (default 8) with an evaluation instruction + answer, *beyond the templates*:
 *     n-grams that occur in the texts of two or more evaluation tasks are template text and are ignored, and an
 *     n-gram counts only if it carries at least two task-specific words (words of a single evaluation task: an MRN,
 *     a name, a DOB, an answer), so a template sentence that merely shares one common first name is not a leak.
 * For (4) the row text is its first turn from `Context:` on (context + question; the fixed prompt preamble and function
 * list are the same for every task) plus all assistant turns.
 */
import type { TaskCase } from '../tasks/types.js';
import type { CanonicalRow } from './types.js';

export interface EvalIdentity {
  mrn: string;
  /** Given name(s) and family name as they appear in the record. */
  given: string[];
  family: string;
  birthDate: string;
}

export interface EvalIndex {
  name: string;
  taskCount: number;
  mrns: Set<string>;
  pairs: Set<string>;
  /** birthDate → identities born that day. */
  byDob: Map<string, EvalIdentity[]>;
  ngrams: Set<string>;
  n: number;
}

export type PollutionReason = 'eval-mrn' | 'eval-name-dob' | 'eval-pair' | 'eval-ngram';

const WORD = /[\p{L}\p{N}]+(?:['’.\-/][\p{L}\p{N}]+)*/gu;
const MRN = /\bS\d{7}\b/g;
const DATE = /\b\d{4}-\d{2}-\d{2}\b/g;

export function words(text: string): string[] {
  return (text.toLowerCase().match(WORD) ?? []).map((w) => w.replace(/’/g, "'"));
}

export function ngramsOf(text: string, n: number): string[] {
  const w = words(text);
  const out: string[] = [];
  for (let i = 0; i + n <= w.length; i++) out.push(w.slice(i, i + n).join(' '));
  return out;
}

export function familyOf(taskId: string): string {
  return taskId.split('_')[0]!;
}

/** Names and DOBs stated in task1 instructions (`… with name {NAME} and DOB of {DOB}?`). */
export function identitiesFromInstructions(tasks: TaskCase[]): EvalIdentity[] {
  const out: EvalIdentity[] = [];
  for (const t of tasks) {
    const m = /with name (.+?) and DOB of (\d{4}-\d{2}-\d{2})/.exec(t.instruction);
    if (!m) continue;
    const parts = m[1]!.trim().split(/\s+/);
    out.push({ mrn: t.eval_MRN ?? '', given: parts.slice(0, -1), family: parts[parts.length - 1]!, birthDate: m[2]! });
  }
  return out;
}

/** Build the index. `identities` adds name+DOB of evaluation patients looked up in the world (MRN → Patient). */
export function buildEvalIndex(name: string, tasks: TaskCase[], identities: EvalIdentity[] = [], n = 8): EvalIndex {
  const mrns = new Set<string>();
  const pairs = new Set<string>();
  for (const t of tasks) {
    if (t.eval_MRN) {
      mrns.add(t.eval_MRN);
      pairs.add(`${familyOf(t.id)}|${t.eval_MRN}`);
    }
    for (const s of t.sol ?? []) for (const m of s.match(MRN) ?? []) mrns.add(m);
  }
  const byDob = new Map<string, EvalIdentity[]>();
  for (const id of [...identitiesFromInstructions(tasks), ...identities]) {
    const list = byDob.get(id.birthDate) ?? [];
    list.push(id);
    byDob.set(id.birthDate, list);
  }
  // n-grams of instruction + answer; those shared by ≥ 2 tasks are template text
  const seen = new Map<string, number>();
  for (const t of tasks) {
    const text = `${t.instruction} ${(t.sol ?? []).join(' ')}`;
    for (const g of new Set(ngramsOf(text, n))) seen.set(g, (seen.get(g) ?? 0) + 1);
  }
  // words of one task only are task-specific (a name, a DOB, an MRN, an answer); an n-gram is evidence of overlap only
  // if it is unique to one task AND carries at least two such words (template text + one common first name is not)
  const wordTasks = new Map<string, number>();
  for (const t of tasks) for (const w of new Set(words(`${t.instruction} ${(t.sol ?? []).join(' ')}`))) wordTasks.set(w, (wordTasks.get(w) ?? 0) + 1);
  const ngrams = new Set<string>();
  for (const [g, c] of seen) {
    if (c !== 1) continue;
    let specific = 0;
    for (const w of g.split(' ')) if (wordTasks.get(w) === 1) specific++;
    if (specific >= 2) ngrams.add(g);
  }
  return { name, taskCount: tasks.length, mrns, pairs, byDob, ngrams, n };
}

function mentionsIdentity(text: string, idx: EvalIndex): boolean {
  for (const d of text.match(DATE) ?? []) {
    const ids = idx.byDob.get(d);
    if (!ids) continue;
    for (const id of ids) {
      if (text.includes(id.family) && id.given.every((g) => text.includes(g))) return true;
    }
  }
  return false;
}

/** The reasons (possibly several) a row is polluted; empty when clean. */
export function pollutionReasons(row: CanonicalRow, idx: EvalIndex): PollutionReason[] {
  return messagePollutionReasons(row.messages, row.meta.task_family, row.meta.patient, idx);
}

/**
 * The pollution rules on a task that has no trajectory yet (a generated task served as an environment task): its first
 * user message (the prompt ending with `Context: …` and the question) and the patient it is about.
 */
export function taskPollutionReasons(task: TaskCase, prompt: string, patient: string | null, idx: EvalIndex): PollutionReason[] {
  return messagePollutionReasons([{ role: 'user', content: prompt }], familyOf(task.id), patient, idx);
}

function messagePollutionReasons(
  messages: ReadonlyArray<{ role: string; content: string }>,
  family: string,
  patient: string | null,
  idx: EvalIndex,
): PollutionReason[] {
  const reasons = new Set<PollutionReason>();
  for (const m of messages) {
    if (!reasons.has('eval-mrn')) for (const x of m.content.match(MRN) ?? []) if (idx.mrns.has(x)) reasons.add('eval-mrn');
    if (!reasons.has('eval-name-dob') && mentionsIdentity(m.content, idx)) reasons.add('eval-name-dob');
  }
  if (patient && idx.pairs.has(`${family}|${patient}`)) reasons.add('eval-pair');
  const first = messages[0]!.content;
  const ctx = first.lastIndexOf('\nContext: ');
  const parts = [ctx >= 0 ? first.slice(ctx) : first, ...messages.filter((m) => m.role === 'assistant').map((m) => m.content)];
  for (const p of parts) {
    if (ngramsOf(p, idx.n).some((g) => idx.ngrams.has(g))) {
      reasons.add('eval-ngram');
      break;
    }
  }
  return [...reasons].sort();
}
