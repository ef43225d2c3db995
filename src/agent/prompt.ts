/**
 * The official MedAgentBench prompt (`MedAgentBench_prompt` of the upstream task; docs/eval.md), rendered
 * byte-identically.
 *
 * Filling is Python `str.format` on the template: a single, non-recursive substitution. `{functions}` is the exact
 * bytes of `data/medagentbench/funcs_v1.json` (what `json.dumps(funcs)` prints), so the literal `{api_base}` inside
 * the function names stays as it is.
 */
import { createHash } from 'node:crypto';
import type { TaskCase } from '../tasks/types.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { functionsText } from '../protocol/tools.js';
import { MEDAGENTBENCH_DIALECT, type Dialect } from '../protocol/dialect.js';

import { PROMPT_TEMPLATE } from '../protocol/text.js';

export { PROMPT_TEMPLATE };

export { functionsText };

export interface PromptOptions {
  /** Value of `{api_base}`; default `http://localhost:8080/fhir/`. */
  apiBase?: string;
  /** Value of `{functions}`; default the exact text of the dialect's functions (funcs_v1.json). */
  functions?: string;
  /** The protocol dialect (src/protocol/dialect.ts); default MedAgentBench's, the official prompt byte for byte. */
  dialect?: Dialect;
}

const FIELD = /\{(api_base|functions|context|question)\}/g;

/** Python `str.format` of the official template: each placeholder replaced once, inserted values never re-scanned. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(FIELD, (_m, name: string) => values[name]);
}

/** The initial user message of an episode, byte-identical to the official harness's (in MedAgentBench's dialect). */
export function renderPrompt(task: Pick<TaskCase, 'context' | 'instruction'>, opts: PromptOptions = {}): string {
  const dialect = opts.dialect ?? MEDAGENTBENCH_DIALECT;
  return renderTemplate(dialect.promptTemplate, {
    api_base: opts.apiBase ?? OFFICIAL_API_BASE,
    functions: opts.functions ?? functionsText(dialect),
    context: task.context,
    question: task.instruction,
  });
}

export function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Hashes recorded in run manifests. */
export function promptTemplateSha256(): string {
  return sha256Hex(PROMPT_TEMPLATE);
}
export function functionsSha256(): string {
  return sha256Hex(functionsText());
}
