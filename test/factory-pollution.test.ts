import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildEvalIndex, pollutionReasons } from '../src/factory/pollution.js';
import { renderPrompt } from '../src/agent/prompt.js';
import { contentHash } from '../src/factory/canonical.js';
import type { CanonicalRow, ChatMessage } from '../src/factory/types.js';
import type { TaskCase } from '../src/tasks/types.js';

const evalTasks = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8')) as TaskCase[];
const idx = buildEvalIndex('medagentbench-v2', evalTasks, [{ mrn: 'S2874099', given: ['Zzgiven'], family: 'Zzfamily', birthDate: '1950-01-02' }]);

function row(task: TaskCase, asst: string[], patient: string | null, extraUser: string[] = []): CanonicalRow {
  const messages: ChatMessage[] = [{ role: 'user', content: renderPrompt(task) }];
  asst.forEach((a, i) => {
    messages.push({ role: 'assistant', content: a });
    if (i < asst.length - 1)
      messages.push({
        role: 'user',
        content:
          extraUser[i] ??
          'Here is the response from the GET request:\n{}. Please call FINISH if you have got answers for all the questions and finished all the requested tasks',
      });
  });
  return {
    messages,
    meta: {
      row_id: 'x',
      task_family: task.id.split('_')[0]!,
      task_id: task.id,
      branch: 'b',
      patient,
      world: { name: 'synthetic', seed: 1, patients: 1, fingerprint: 'f' },
      task,
      solver_version: 's',
      grader_version: 'g',
      harness_version: 'h',
      content_sha256: contentHash(messages),
      origin: 'expert',
      augmentation: [],
      verified: true,
    },
  };
}

test('index covers the 98 evaluation MRNs and the (family, patient) pairs', () => {
  assert.equal(idx.mrns.size, 98);
  assert.equal(idx.pairs.size, 298);
  assert.ok(idx.byDob.get('1932-12-29')?.some((i) => i.family === 'Stafford'));
});

test('a synthetic-patient row with the official templates is clean (templates are not pollution)', () => {
  for (const fam of ['task1', 'task2', 'task4', 'task5', 'task9', 'task10']) {
    const t = evalTasks.find((x) => x.id === `${fam}_3`)!;
    const synth: TaskCase = {
      ...t,
      id: `${fam}_s1`,
      instruction: t.instruction.replace(/S\d{7}/g, 'S9123456').replace(/name .+? and DOB of \d{4}-\d{2}-\d{2}/, 'name Avery Quill and DOB of 1961-04-05'),
      eval_MRN: 'S9123456',
    };
    if (synth.sol) synth.sol = ['S9123456'];
    assert.deepEqual(pollutionReasons(row(synth, ['GET http://localhost:8080/fhir/Patient?identifier=S9123456', 'FINISH([1])'], 'S9123456'), idx), [], fam);
  }
});

test('evaluation MRN, name+DOB, (family, patient) pair and instruction n-grams are caught', () => {
  const t = evalTasks.find((x) => x.id === 'task4_1')!;
  // the evaluation task itself: MRN and pair (its instruction has one task-specific word, the MRN, caught by rule 1)
  assert.deepEqual(pollutionReasons(row(t, ['FINISH([-1])'], t.eval_MRN!), idx), ['eval-mrn', 'eval-pair']);
  // an evaluation task1 record itself: MRN (answer), name+DOB and n-gram
  const e1 = evalTasks.find((x) => x.id === 'task1_1')!;
  assert.deepEqual(pollutionReasons(row(e1, [`FINISH(["${e1.sol![0]}"])`], null), idx), ['eval-mrn', 'eval-name-dob', 'eval-ngram']);
  // MRN only inside a FHIR response
  const synth: TaskCase = { ...t, id: 'task4_s', instruction: t.instruction.replace(t.eval_MRN!, 'S9000002'), eval_MRN: 'S9000002' };
  const leak = row(synth, ['GET http://localhost:8080/fhir/Observation?patient=S9000002&code=MG', 'FINISH([-1])'], 'S9000002', [
    'Here is the response from the GET request:\n{"subject": {"reference": "Patient/S3032536"}}. Please call FINISH if you have got answers for all the questions and finished all the requested tasks',
  ]);
  assert.deepEqual(pollutionReasons(leak, idx), ['eval-mrn']);
  // name + DOB of an evaluation patient (from task1 text, and from the world lookup) in a response
  const nd = row(synth, ['GET x', 'FINISH([-1])'], 'S9000002', ['{"name": [{"family": "Stafford", "given": ["Peter"]}], "birthDate": "1932-12-29"}']);
  assert.deepEqual(pollutionReasons(nd, idx), ['eval-name-dob']);
  const nd2 = row(synth, ['GET x', 'FINISH([-1])'], 'S9000002', ['{"family": "Zzfamily", "given": ["Zzgiven"], "birthDate": "1950-01-02"}']);
  assert.deepEqual(pollutionReasons(nd2, idx), ['eval-name-dob']);
  // same name, different DOB is fine
  const nd3 = row(synth, ['GET x', 'FINISH([-1])'], 'S9000002', ['{"family": "Stafford", "given": ["Peter"], "birthDate": "1932-12-30"}']);
  assert.deepEqual(pollutionReasons(nd3, idx), []);
  // a paraphrased task1 question naming an evaluation patient: n-gram (name+DOB in one turn too)
  const t1 = evalTasks.find((x) => x.id === 'task1_1')!;
  const para: TaskCase = { id: 'task1_p', instruction: 'Find the MRN of the patient with name Peter Stafford and DOB of 1932-12-29 please', context: '' };
  assert.ok(pollutionReasons(row(para, ['FINISH(["S9000003"])'], null), idx).includes('eval-ngram'));
  // template text plus one shared common first name is not a leak
  const same = {
    ...t1,
    id: 'task1_q',
    instruction: t1.instruction.replace('Peter Stafford and DOB of 1932-12-29', 'Peter Quill and DOB of 1961-04-05'),
    sol: ['S9000004'],
  };
  assert.deepEqual(pollutionReasons(row(same, ['FINISH(["S9000004"])'], null), idx), []);
});
