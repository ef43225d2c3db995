/**
 * Protocol dialects: what an agent may do and is told it may do, per task set.
 *
 * - `medagentbench` (the default, MedAgentBench v1/v2): the official protocol byte for byte — the official prompt,
 *   the nine functions of `data/medagentbench/funcs_v1.json`, actions GET / POST / FINISH (a `PUT` reply is an invalid
 *   action, as upstream).
 * - `ehrgym` (the clinical suite): the same protocol with a fourth action, `PUT url\n{json}` (an update of an existing
 *   resource, executed in the episode's session), and the functions of `data/ehrgym/funcs.json`: searches of every
 *   resource type the suite's families read (allergies, immunisations, schedules and slots, appointments, orders …),
 *   creates, and updates (`PUT {api_base}/<Type>/{id}`). Its text prompt is the official one with the PUT case added;
 *   its tools are derived from the functions exactly as MedAgentBench's are (src/protocol/tools.ts).
 *
 * A dialect is data: the families of a task set name theirs, and the harness, the environment server and the report
 * pass it to the protocol functions.
 */
import { readFileSync } from 'node:fs';
import { dataPath } from '../worlds/medagentbench.js';
import { EHRGYM_PROMPT_TEMPLATE, PROMPT_TEMPLATE } from './text.js';
import { getFamily, isFamilyId } from '../tasks/registry.js';

export type DialectName = 'medagentbench' | 'ehrgym';

export interface Dialect {
  name: DialectName;
  /** Whether `PUT url\n{json}` is an action (an update); otherwise it is an invalid action. */
  put: boolean;
  /** The text prompt's template (`{api_base}`, `{functions}`, `{context}`, `{question}`; Python `str.format`). */
  promptTemplate: string;
  /** The functions file under `data/` (the text prompt's `{functions}`, the source of the tools). */
  functionsFile: readonly [string, string];
}

export const MEDAGENTBENCH_DIALECT: Dialect = {
  name: 'medagentbench',
  put: false,
  promptTemplate: PROMPT_TEMPLATE,
  functionsFile: ['medagentbench', 'funcs_v1.json'],
};

export const EHRGYM_DIALECT: Dialect = {
  name: 'ehrgym',
  put: true,
  promptTemplate: EHRGYM_PROMPT_TEMPLATE,
  functionsFile: ['ehrgym', 'funcs.json'],
};

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = { medagentbench: MEDAGENTBENCH_DIALECT, ehrgym: EHRGYM_DIALECT };

const texts = new Map<DialectName, string>();

/** The exact text of a dialect's functions file (one line of JSON, no trailing newline), read once. */
export function dialectFunctionsText(d: Dialect = MEDAGENTBENCH_DIALECT): string {
  let t = texts.get(d.name);
  if (t === undefined) {
    t = readFileSync(dataPath(...d.functionsFile), 'utf8');
    texts.set(d.name, t);
  }
  return t;
}

/**
 * The dialect a task's episode speaks: its family's (`TaskFamily.dialect`; MedAgentBench's when the family names none
 * or the id is not a registered family's). This is the one place the choice is made; the text and tools loops, the MCP
 * endpoint, the environment server, the report and the factory all ask it.
 */
export function taskDialect(task: { id: string } | string): Dialect {
  const id = typeof task === 'string' ? task : task.id;
  const fam = id.includes('_') ? id.slice(0, id.indexOf('_')) : id;
  if (!isFamilyId(fam)) return MEDAGENTBENCH_DIALECT;
  return DIALECTS[getFamily(fam).dialect ?? 'medagentbench'];
}
