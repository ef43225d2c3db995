import { test } from 'node:test';
import assert from 'node:assert/strict';
import { claimsAction, detectAll, DETECTORS, extraText, patientsInUrl, postUrlProblem } from '../src/report/behaviours.js';
import { GET_OK_PREFIX, GET_OK_SUFFIX, parseAction, promptParts } from '../src/report/history.js';
import type { GradeResult, HistoryItem, TaskOutput } from '../src/tasks/types.js';
import type { BehaviourId, TaskInfo } from '../src/report/types.js';

const BASE = 'http://localhost:8080/fhir/';
const MRN = 'S1234567';
const task = (family: string, kind: TaskInfo['kind'] = 'query', instruction = `What is the most recent CBG of the patient ${MRN}?`): TaskInfo => ({
  id: `${family}_1`,
  family,
  kind,
  mrn: family === 'task1' ? undefined : MRN,
  instruction,
  context: 'It\'s 2023-11-13T10:15:00+00:00 now. The code for CBG is "GLU"',
  apiBase: BASE,
});
const obs = (value: number, time: string, code = 'GLU') => ({
  resource: {
    resourceType: 'Observation',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: time,
    valueQuantity: { value, unit: 'mg/dL' },
  },
});
const bundle = (entries: unknown[], next = false) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  total: entries.length,
  link: [{ relation: 'self', url: 'x' }, ...(next ? [{ relation: 'next', url: 'y' }] : [])],
  entry: entries,
});
const getOk = (json: unknown): string => GET_OK_PREFIX + JSON.stringify(json, null, 2) + GET_OK_SUFFIX;
const POST_OK =
  'POST request accepted and executed successfully. Please call FINISH if you have got answers for all the questions and finished all the requested tasks';

/** An episode: agent/user items after the prompt; status derived from the last agent item unless given. */
function episode(items: Array<[HistoryItem['role'], string]>, status?: string): TaskOutput {
  const history: HistoryItem[] = [{ role: 'user', content: 'prompt' }, ...items.map(([role, content]) => ({ role, content }))];
  const last = [...history].reverse().find((h) => h.role === 'agent');
  const a = last ? parseAction(last.content) : undefined;
  const st = status ?? (a?.kind === 'FINISH' ? 'completed' : a?.kind === 'invalid' ? 'agent invalid action' : 'task limit reached');
  return { index: 0, status: st, result: st === 'completed' ? a!.result! : null, history };
}
const grade = (correct: boolean, reference?: unknown): GradeResult => ({ correct, reference, checks: [] });
const run = (id: BehaviourId, t: TaskInfo, o: TaskOutput, g: GradeResult = grade(false)) => DETECTORS[id](t, o, g);
const ids = (t: TaskInfo, o: TaskOutput, g: GradeResult) => detectAll(t, o, g).map((f) => f.behaviour);

const GET_GLU = `GET ${BASE}Observation?patient=${MRN}&code=GLU`;

test('a clean episode shows no behaviour', () => {
  const o = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([obs(129, '2023-11-12T09:00:00+00:00')]))],
    ['agent', 'FINISH([129])'],
  ]);
  assert.deepEqual(ids(task('task7'), o, grade(true, [129])), []);
});

test('prose: text before a call, after a URL, after JSON, after FINISH; not for clean calls', () => {
  assert.equal(extraText('Sure! Here is the call:\nGET http://x/Patient?name=a'), 'Sure! Here is the call:\nGET http://x/Patient?name=a');
  assert.equal(extraText('GET http://x/Patient?name=a\nThis finds the patient.'), 'This finds the patient.');
  assert.equal(extraText('POST http://x/Observation\n{"a": "}"}\nDone.'), 'Done.');
  assert.equal(extraText('FINISH(["a)b"]) I am done'), 'I am done');
  assert.equal(extraText('FINISH([1, [2]])'), undefined);
  // a space inside the URL is sent as is (`name=Peter Stafford`), not prose; words after the URL are
  assert.equal(extraText('GET http://x/Patient?name=Peter Stafford&birthdate=1932-12-29'), undefined);
  assert.equal(extraText('GET http://x/Patient?name=Peter Stafford'), undefined);
  assert.equal(extraText('GET http://x/Patient?name=a to find the patient'), 'to find the patient');
  assert.equal(extraText('```\nGET http://x/Patient?name=a\n```'), undefined);
  assert.equal(extraText('<think>plan</think>'), undefined);
  const o = episode([['agent', 'I will look up the labs first.']]);
  const f = run('prose', task('task7'), o);
  assert.equal(f.length, 1);
  assert.equal(f[0]!.turn, 1);
  assert.deepEqual(ids(task('task7'), o, grade(false, [129])), ['prose']);
});

test('think: reasoning blocks are found; the answer after them is not prose', () => {
  const o = episode([['agent', '<think>The latest value is needed.</think>\nFINISH([129])']], 'agent invalid action');
  assert.deepEqual(
    run('think', task('task7'), o).map((f) => f.turn),
    [1],
  );
  assert.deepEqual(run('prose', task('task7'), o), []);
  assert.deepEqual(run('think', task('task7'), episode([['agent', 'FINISH(["think"])']])), []);
});

test('fence: Markdown fences, any language tag', () => {
  const o = episode([
    ['agent', '```json\nGET x\n```'],
    ['agent', '```\nFINISH([1])\n```'],
  ]);
  assert.deepEqual(
    run('fence', task('task7'), o).map((f) => f.turn),
    [1, 2],
  );
});

test('finish-not-json: FINISH content that does not parse', () => {
  assert.equal(run('finish-not-json', task('task7'), episode([['agent', "FINISH(['S1'])"]])).length, 1);
  assert.equal(run('finish-not-json', task('task7'), episode([['agent', 'FINISH(129 mg/dL)']])).length, 1);
  assert.equal(run('finish-not-json', task('task7'), episode([['agent', 'FINISH([129])']])).length, 0);
  assert.equal(run('finish-not-json', task('task7'), episode([['agent', 'FINISH()']])).length, 1); // empty is not JSON
});

test('invalid-post-json: uses the harness reply', () => {
  const o = episode([
    ['agent', `POST ${BASE}Observation\n{"resourceType": "Observation",}`],
    ['user', 'Invalid POST request'],
    ['agent', `POST ${BASE}Observation\n{"resourceType": "Observation"}`],
    ['user', POST_OK],
    ['agent', 'FINISH([])'],
  ]);
  assert.deepEqual(
    run('invalid-post-json', task('task3', 'action'), o).map((f) => f.turn),
    [1],
  );
});

test('wrong-post-url: double slash, other host, query string, other path', () => {
  assert.equal(postUrlProblem(`${BASE}MedicationRequest`, BASE), undefined);
  assert.equal(postUrlProblem(`${BASE}/MedicationRequest`, BASE), 'double slash');
  assert.equal(postUrlProblem('http://127.0.0.1:8080/fhir/MedicationRequest', BASE), 'other host (127.0.0.1:8080)');
  assert.equal(postUrlProblem(`${BASE}MedicationRequest?_format=json`, BASE), 'query string');
  assert.equal(postUrlProblem(`${BASE}MedicationRequest/`, BASE), 'other path');
  assert.equal(postUrlProblem('{api_base}/ServiceRequest', BASE), 'not an absolute URL');
  const o = episode([
    ['agent', `POST ${BASE}/ServiceRequest\n{}`],
    ['user', POST_OK],
    ['agent', `POST ${BASE}ServiceRequest\n{}`],
    ['user', POST_OK],
    ['agent', 'FINISH([])'],
  ]);
  const f = run('wrong-post-url', task('task8', 'action'), o);
  assert.equal(f.length, 1);
  assert.match(f[0]!.evidence, /^double slash: /);
});

test('post-in-read-only: POSTs count only in query families', () => {
  const o = episode([
    ['agent', `POST ${BASE}Observation\n{}`],
    ['user', POST_OK],
    ['agent', 'FINISH([1])'],
  ]);
  assert.equal(run('post-in-read-only', task('task4'), o).length, 1);
  assert.equal(run('post-in-read-only', task('task3', 'action'), o).length, 0);
  // the word alone trips check_has_post
  const word = run('post-in-read-only', task('task7'), episode([['agent', 'FINISH(["no POST needed"])']]));
  assert.equal(word.length, 1);
  assert.match(word[0]!.evidence, /^the word POST trips the grader's check_has_post/);
});

test('fabricated-action: claimed order without POST; value found in no GET response', () => {
  const claim = episode([['agent', 'FINISH(["Ordered 1 g IV magnesium"])']]);
  const f = run('fabricated-action', task('task5', 'action'), claim);
  assert.equal(f.length, 1);
  assert.match(f[0]!.evidence, /"Ordered" but no POST was accepted/);
  assert.equal(claimsAction('No order placed'), undefined);
  assert.equal(claimsAction("The order wasn't placed"), undefined);
  assert.equal(claimsAction('Referral submitted'), 'submitted');
  // claim supported by an accepted POST
  const supported = episode([
    ['agent', `POST ${BASE}MedicationRequest\n{}`],
    ['user', POST_OK],
    ['agent', 'FINISH(["Ordered"])'],
  ]);
  assert.equal(run('fabricated-action', task('task5', 'action'), supported).length, 0);
  // value not in any response
  const invented = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([obs(129, '2023-11-12T09:00:00+00:00')]))],
    ['agent', 'FINISH([131])'],
  ]);
  assert.match(run('fabricated-action', task('task7'), invented)[0]!.evidence, /answer reports 131, found in no GET response/);
  // answering a value without any GET
  const blind = episode([['agent', 'FINISH([72])']]);
  assert.match(run('fabricated-action', task('task2'), blind)[0]!.evidence, /no successful GET/);
  // a computed answer (task6 mean) after a GET is not fabricated; -1 is never a fabricated value
  const mean = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([obs(100, '2023-11-13T01:00:00+00:00'), obs(110, '2023-11-13T02:00:00+00:00')]))],
    ['agent', 'FINISH([105])'],
  ]);
  assert.equal(run('fabricated-action', task('task6'), mean).length, 0);
  assert.equal(run('fabricated-action', task('task4'), episode([['agent', 'FINISH([-1])']])).length, 0);
  // numbers given in the task text are not fabricated (task3's BP, task8's SNOMED code)
  const t3 = task('task3', 'action', `I just measured the blood pressure for patient with MRN of ${MRN}, and it is "118/77 mmHg". Help me record it.`);
  assert.equal(run('fabricated-action', t3, episode([['agent', 'FINISH(["118/77 mmHg"])']])).length, 0);
});

test('self-contradiction: value retrieved, then -1 answered', () => {
  const o = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([obs(129, '2023-11-12T09:00:00+00:00')]))],
    ['agent', 'FINISH([-1])'],
  ]);
  const f = run('self-contradiction', task('task7'), o, grade(false, [129]));
  assert.deepEqual(
    f.map((x) => x.turn),
    [1],
  );
  assert.match(f[0]!.evidence, /values 129; answered \[-1\]; reference \[129\]/);
  // reference is -1 (nothing in the window): answering -1 is right, not a contradiction
  assert.equal(run('self-contradiction', task('task4'), o, grade(true, [-1])).length, 0);
  // nothing retrieved
  const empty = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([]))],
    ['agent', 'FINISH([-1])'],
  ]);
  assert.equal(run('self-contradiction', task('task7'), empty, grade(false, [129])).length, 0);
});

test('stale-value: answered an older or first-page value; uses the reference', () => {
  const o = episode([
    ['agent', GET_GLU],
    ['user', getOk(bundle([obs(120, '2021-01-01T00:00:00+00:00'), obs(129, '2023-11-12T09:00:00+00:00')], true))],
    ['agent', 'FINISH([120])'],
  ]);
  const f = run('stale-value', task('task7'), o, grade(false, [129]));
  assert.equal(f.length, 1);
  assert.equal(f[0]!.evidence, 'answered 120 (2021-01-01T00:00:00+00:00), reference [129]; no _sort, more pages not read');
  assert.equal(run('stale-value', task('task7'), o, grade(true, [120])).length, 0);
  assert.equal(run('stale-value', task('task6'), o, grade(false, [129])).length, 0);
  // task10 reference [value, time]
  const t10 = episode([
    ['agent', `GET ${BASE}Observation?patient=${MRN}&code=A1C&_sort=date`],
    ['user', getOk(bundle([obs(6.1, '2020-01-01T00:00:00+00:00', 'A1C')]))],
    ['agent', 'FINISH([6.1, "2020-01-01T00:00:00+00:00"])'],
  ]);
  assert.equal(
    run('stale-value', task('task10', 'action'), t10, grade(false, [7.2, '2023-01-01T00:00:00+00:00']))[0]!.evidence,
    'answered 6.1 (2020-01-01T00:00:00+00:00), reference [7.2,"2023-01-01T00:00:00+00:00"]',
  );
});

test('wrong-patient: GET parameters, Patient/<id> and POST subject', () => {
  assert.deepEqual(patientsInUrl(`${BASE}Observation?patient=S7654321&code=K`), ['S7654321']);
  assert.deepEqual(patientsInUrl(`${BASE}Patient?identifier=urn%3Aoid%3A1%7CS1`), ['S1']);
  assert.deepEqual(patientsInUrl(`${BASE}Patient/S2`), ['S2']);
  const o = episode([
    ['agent', `GET ${BASE}Observation?patient=S7654321&code=GLU`],
    ['user', getOk(bundle([]))],
    ['agent', `POST ${BASE}ServiceRequest\n{"subject": {"reference": "Patient/S0000001"}}`],
    ['user', POST_OK],
    ['agent', `POST ${BASE}ServiceRequest\n{"subject": {"reference": "Patient/${MRN}"}}`],
    ['user', POST_OK],
    ['agent', 'FINISH([])'],
  ]);
  assert.deepEqual(
    run('wrong-patient', task('task8', 'action'), o).map((f) => f.evidence),
    [`GET for S7654321; task patient ${MRN}`, `POST subject Patient/S0000001; task patient ${MRN}`],
  );
  assert.equal(run('wrong-patient', task('task1'), o).length, 0); // task1 names no patient id
  // task1: the answer names another patient
  const t1 = episode([['agent', 'FINISH(["S2222222"])']]);
  assert.deepEqual(
    run('wrong-patient', task('task1'), t1, grade(false, ['S1111111'])).map((f) => f.evidence),
    ['answered S2222222; reference ["S1111111"]'],
  );
  assert.equal(run('wrong-patient', task('task1'), episode([['agent', 'FINISH(["Patient not found"])']]), grade(false, ['S1111111'])).length, 0);
});

test('round and context limits come from the status', () => {
  assert.equal(
    run(
      'round-limit',
      task('task7'),
      episode(
        [
          ['agent', GET_GLU],
          ['user', getOk(bundle([]))],
        ],
        'task limit reached',
      ),
    ).length,
    1,
  );
  assert.equal(run('context-limit', task('task7'), episode([], 'agent context limit')).length, 1);
  assert.equal(run('round-limit', task('task7'), episode([['agent', 'FINISH([1])']])).length, 0);
});

test('promptParts reads context, question and api base from the official prompt', () => {
  const p = "You are an expert… Note that you should use http://localhost:8080/fhir/ as the api_base.\n[]\n\nContext: It's now.\n\nQuestion: Check K.\n";
  assert.deepEqual(promptParts(p), { question: 'Check K.\n', context: "It's now.\n", apiBase: BASE });
});
