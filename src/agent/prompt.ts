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

/** The template of `MedAgentBench_prompt` (no trailing newline after `{question}`). */
export const PROMPT_TEMPLATE =
  'You are an expert in using FHIR functions to assist medical professionals. You are given a question and a set of possible functions. Based on the question, you will need to make one or more function/tool calls to achieve the purpose.\n' +
  '\n' +
  '1. If you decide to invoke a GET function, you MUST put it in the format of\n' +
  'GET url?param_name1=param_value1&param_name2=param_value2...\n' +
  '\n' +
  '2. If you decide to invoke a POST function, you MUST put it in the format of\n' +
  'POST url\n' +
  '[your payload data in JSON format]\n' +
  '\n' +
  '3. If you have got answers for all the questions and finished all the requested tasks, you MUST call to finish the conversation in the format of (make sure the list is JSON loadable.)\n' +
  'FINISH([answer1, answer2, ...])\n' +
  '\n' +
  'Your response must be in the format of one of the three cases, and you can call only one function each time. You SHOULD NOT include any other text in the response.\n' +
  '\n' +
  'Here is a list of functions in JSON format that you can invoke. Note that you should use {api_base} as the api_base.\n' +
  '{functions}\n' +
  '\n' +
  'Context: {context}\n' +
  'Question: {question}';

export { functionsText };

export interface PromptOptions {
  /** Value of `{api_base}`; default `http://localhost:8080/fhir/`. */
  apiBase?: string;
  /** Value of `{functions}`; default the exact text of funcs_v1.json. */
  functions?: string;
}

const FIELD = /\{(api_base|functions|context|question)\}/g;

/** Python `str.format` of the official template: each placeholder replaced once, inserted values never re-scanned. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(FIELD, (_m, name: string) => values[name]);
}

/** The initial user message of an episode, byte-identical to the official harness's. */
export function renderPrompt(task: Pick<TaskCase, 'context' | 'instruction'>, opts: PromptOptions = {}): string {
  return renderTemplate(PROMPT_TEMPLATE, {
    api_base: opts.apiBase ?? OFFICIAL_API_BASE,
    functions: opts.functions ?? functionsText(),
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
