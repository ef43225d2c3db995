import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPrompt } from '../src/agent/prompt.js';
import { POST_ACCEPTED, getOkReply, parseAction } from '../src/agent/parser.js';
import { EXPORT_FORMATS, ROW_MODES, exportRows, importRows, fromTrainerRow, llamafactoryDatasetInfo } from '../src/factory/export.js';
import { contentHash } from '../src/factory/canonical.js';
import { checkParity } from '../src/factory/parity.js';
import type { CanonicalRow, ChatMessage } from '../src/factory/types.js';
import type { TaskCase } from '../src/tasks/types.js';

const task5: TaskCase = {
  id: 'task5_9001',
  instruction:
    "Check patient S9000001's last serum magnesium level within last 24 hours. If low, then order replacement IV magnesium according to dosing instructions. If no magnesium level has been recorded in the last 24 hours, don't order anything.\n",
  context:
    'It\'s 2023-11-13T10:15:00+00:00 now. The code for magnesium is "MG". The NDC for replacement IV magnesium is 0338-1715-40. Dosing instructions: (1) Mild deficiency (eg, serum magnesium 1.5 to 1.9 mg/dL):\nIV: 1 g over 1 hour.\n(2) Moderate deficiency (eg, serum magnesium 1 to <1.5 mg/dL):\nIV: 2 g over 2 hours.\n(3) Severe deficiency (eg, serum magnesium <1 mg/dL):\nIV: 4 g over 4 hours.\n',
  eval_MRN: 'S9000001',
};
const bundle =
  '{\n  "resourceType": "Bundle",\n  "type": "searchset",\n  "total": 1,\n  "entry": [ {\n    "resource": {\n      "resourceType": "Observation",\n      "valueQuantity": {\n        "value": 1.8\n      }\n    }\n  } ]\n}';
const post =
  'POST http://localhost:8080/fhir/MedicationRequest\n{"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0338-1715-40"}]}, "authoredOn": "2023-11-13T10:15:00+00:00", "dosageInstruction": [{"route": "IV", "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "g"}, "rateQuantity": {"value": 1, "unit": "h"}}]}], "status": "active", "intent": "order", "subject": {"reference": "Patient/S9000001"}}';

function makeRow(id: string, messages: ChatMessage[]): CanonicalRow {
  return {
    messages,
    meta: {
      row_id: id,
      task_family: 'task5',
      task_id: task5.id,
      branch: 'low_order_required',
      patient: 'S9000001',
      world: { name: 'synthetic', seed: 1, patients: 10, fingerprint: 'f' },
      task: task5,
      solver_version: 's1',
      grader_version: 'g1',
      harness_version: '0.1.0',
      content_sha256: contentHash(messages),
      origin: 'expert',
      augmentation: [],
      verified: true,
    },
  };
}

const conv: ChatMessage[] = [
  { role: 'user', content: renderPrompt(task5) },
  { role: 'assistant', content: 'GET http://localhost:8080/fhir/Observation?patient=S9000001&code=MG&_sort=-date' },
  { role: 'user', content: getOkReply(bundle) },
  { role: 'assistant', content: post },
  { role: 'user', content: POST_ACCEPTED },
  { role: 'assistant', content: 'FINISH([1.8])' },
];
const rows = [makeRow('r1', conv), makeRow('r2', [conv[0]!, { role: 'assistant', content: 'FINISH([])' }])];

test('every export format and row mode round-trips to the canonical rows', () => {
  for (const format of EXPORT_FORMATS) {
    for (const mode of ROW_MODES) {
      const { lines, metas } = exportRows(rows, format, mode);
      const reparsed = lines.map((l) => JSON.parse(JSON.stringify(l)) as Record<string, unknown>);
      const back = importRows(reparsed, metas, format, mode);
      assert.deepEqual(back, rows, `${format}/${mode}`);
      if (mode === 'per-turn') assert.equal(lines.length, 3 + 1, `${format} per-turn rows = assistant turns`);
    }
  }
});

test('trainer shapes follow the documented formats', () => {
  const oa = exportRows(rows, 'openai', 'trajectory').lines[0] as { messages: { role: string; weight?: number }[] };
  assert.deepEqual(
    oa.messages.map((m) => m.weight),
    [undefined, 1, undefined, 1, undefined, 1],
  );
  assert.ok(!('meta' in oa));
  const trl = exportRows(rows, 'trl', 'per-turn').lines[1] as { prompt: ChatMessage[]; completion: ChatMessage[]; chat_template_kwargs: unknown };
  assert.equal(trl.prompt.length, 3);
  assert.deepEqual(trl.completion, [{ role: 'assistant', content: post }]);
  assert.deepEqual(trl.chat_template_kwargs, { enable_thinking: false });
  const lf = exportRows(rows, 'llamafactory', 'trajectory').lines[0] as { conversations: { from: string }[] };
  assert.deepEqual(
    lf.conversations.map((c) => c.from),
    ['human', 'gpt', 'human', 'gpt', 'human', 'gpt'],
  );
  assert.deepEqual(llamafactoryDatasetInfo(['train', 'valid']), {
    medagent_sft: { file_name: 'train.jsonl', formatting: 'sharegpt', columns: { messages: 'conversations' } },
    medagent_sft_valid: { file_name: 'valid.jsonl', formatting: 'sharegpt', columns: { messages: 'conversations' } },
  });
  const ax = exportRows(rows, 'axolotl', 'per-turn').lines[2] as { messages: { train?: boolean }[] };
  assert.deepEqual(
    ax.messages.map((m) => m.train),
    [undefined, false, undefined, false, undefined, undefined],
  );
});

test('import rejects malformed trainer rows', () => {
  assert.throws(() => fromTrainerRow({ messages: [{ role: 'assistant', content: 'x', weight: 0 }] }, 'openai', 'trajectory'), /weight/);
  assert.throws(() => fromTrainerRow({ messages: conv }, 'trl', 'trajectory'), /enable_thinking/);
  assert.throws(() => fromTrainerRow({ conversations: [{ from: 'gpt', value: 'x' }] }, 'llamafactory', 'trajectory'), /alternating/);
  const { lines, metas } = exportRows(rows, 'trl', 'per-turn');
  assert.throws(() => importRows(lines.slice(1), metas, 'trl', 'per-turn'));
});

test('parity check passes the harness-shaped row and catches planted mismatches', async () => {
  assert.deepEqual(await checkParity(conv, task5), []);
  const fenced = conv.map((m, i) => (i === 1 ? { ...m, content: 'GET http://localhost:8080/fhir/Observation?patient=S9000001&code=MG' } : m));
  const expected = conv.filter((m) => m.role === 'assistant').map((m) => parseAction(m.content));
  const issues = await checkParity(fenced, task5, { expected });
  assert.ok(issues.some((i) => i.turn === 1 && /different action/.test(i.problem)));
  const badPost = conv.map((m, i) => (i === 4 ? { ...m, content: POST_ACCEPTED + ' ' } : m));
  assert.ok((await checkParity(badPost, task5)).some((i) => i.turn === 4));
  const badPrompt = conv.map((m, i) => (i === 0 ? { ...m, content: m.content.replace('Context: ', 'Context:') } : m));
  assert.ok((await checkParity(badPrompt, task5)).some((i) => i.turn === 0));
  const prose = conv.map((m, i) => (i === 5 ? { ...m, content: 'The answer is FINISH([1.8])' } : m));
  assert.ok((await checkParity(prose, task5)).some((i) => i.turn === 5));
  const badGet = conv.map((m, i) => (i === 2 ? { ...m, content: m.content.replace('. Please call', '.Please call') } : m));
  assert.ok((await checkParity(badGet, task5)).some((i) => i.turn === 2));
});
