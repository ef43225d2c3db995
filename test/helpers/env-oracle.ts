/**
 * The expert policy of a task family played as tool calls against an environment surface: each text action of the
 * solver mapped to its tool call (`actionToCall`), sent with `send`, and the observation text fed back as the text
 * protocol's answer. `mutate` may rewrite a call before it is sent (e.g. a wrong dose).
 */
import { getFamily } from '../../src/tasks/registry.js';
import type { HistoryItem, TaskCase } from '../../src/tasks/types.js';
import { OFFICIAL_API_BASE } from '../../src/fhir/types.js';
import { parseAction } from '../../src/protocol/text.js';
import { actionToCall, renderToolsPrompt, type ToolCallText } from '../../src/protocol/tools.js';
import { taskDialect } from '../../src/protocol/dialect.js';

export interface OracleStep {
  /** The observation text the surface answered. */
  text: string;
  done: boolean;
}

export async function playOracle<R extends OracleStep>(
  task: TaskCase,
  send: (call: ToolCallText) => Promise<R>,
  mutate: (call: ToolCallText) => ToolCallText = (c) => c,
): Promise<{ last: R; calls: ToolCallText[] }> {
  const family = getFamily(task.id);
  const dialect = taskDialect(task);
  const history: HistoryItem[] = [{ role: 'user', content: renderToolsPrompt(task) }];
  const calls: ToolCallText[] = [];
  for (let i = 0; i < 20; i++) {
    const text = family.solve(task, history, { apiBase: OFFICIAL_API_BASE });
    history.push({ role: 'agent', content: text });
    const call = mutate(actionToCall(parseAction(text, { put: dialect.put }), OFFICIAL_API_BASE, dialect));
    calls.push(call);
    const r = await send(call);
    if (r.done) return { last: r, calls };
    history.push({ role: 'user', content: r.text });
  }
  throw new Error(`the oracle did not finish ${task.id}`);
}

/** A MedicationRequest create call with its dose value raised by 1 (other calls unchanged). */
export function wrongDose(call: ToolCallText): ToolCallText {
  if (call.name !== 'medication_request_create') return call;
  const body = JSON.parse(call.arguments) as { dosageInstruction: Array<{ doseAndRate: Array<{ doseQuantity: { value: number } }> }> };
  body.dosageInstruction[0]!.doseAndRate[0]!.doseQuantity.value += 1;
  return { name: call.name, arguments: JSON.stringify(body) };
}

/** The vitals create call of a blood-pressure reading tagged `marker` for patient `mrn`. */
export function bpCall(mrn: string, marker: string): ToolCallText {
  return {
    name: 'observation_create',
    arguments: JSON.stringify({
      resourceType: 'Observation',
      category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
      code: { text: 'BP' },
      effectiveDateTime: '2023-11-13T10:15:00+00:00',
      status: 'final',
      valueString: marker,
      subject: { reference: `Patient/${mrn}` },
    }),
  };
}
