/**
 * Run folders for the report tests, written in the documented layout (src/eval/types.ts; docs/eval.md) from
 * crafted episodes. Used where a scenario needs exact control over every history item.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GradedTask, RunSummary, RunsLine } from '../src/eval/types.js';
import type { GradeCheck, HistoryItem, TaskCase, TaskOutput } from '../src/tasks/types.js';
import type { MockRequest, MockResponse } from '../src/agent/mock-openai.js';

export const BASE = 'http://localhost:8080/fhir/';
export const GET_OK = (json: unknown): string =>
  `Here is the response from the GET request:\n${JSON.stringify(json, null, 2)}. Please call FINISH if you have got answers for all the questions and finished all the requested tasks`;
export const POST_OK =
  'POST request accepted and executed successfully. Please call FINISH if you have got answers for all the questions and finished all the requested tasks';
export const POST_BAD = 'Invalid POST request';

export const prompt = (context: string, question: string): string =>
  `You are an expert in using FHIR functions to assist medical professionals. …\n\nHere is a list of functions in JSON format that you can invoke. Note that you should use ${BASE} as the api_base.\n[]\n\nContext: ${context}\nQuestion: ${question}`;

export const obs = (value: number, time: string, code: string) => ({
  fullUrl: `${BASE}Observation/1`,
  resource: {
    resourceType: 'Observation',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    effectiveDateTime: time,
    valueQuantity: { value, unit: 'mg/dL' },
  },
  search: { mode: 'match' },
});
export const bundle = (entry: unknown[], next = false) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  ...(next ? {} : { total: entry.length }),
  link: [{ relation: 'self', url: `${BASE}Observation` }, ...(next ? [{ relation: 'next', url: `${BASE}?_getpages=x` }] : [])],
  ...(entry.length ? { entry } : {}),
});

export interface Episode {
  id: string;
  question: string;
  context?: string;
  /** Items after the prompt. */
  items: Array<[HistoryItem['role'], string]>;
  status: string;
  result?: string | null;
  correct: boolean;
  reference?: unknown;
  checks?: GradeCheck[];
  rounds?: number;
}

export function writeRunFolder(dir: string, agent: string, episodes: Episode[], taskSetName = 'crafted'): string {
  mkdirSync(dir, { recursive: true });
  const lines: RunsLine[] = [];
  const grades: GradedTask[] = [];
  episodes.forEach((e, index) => {
    const history: HistoryItem[] = [{ role: 'user', content: prompt(e.context ?? '', e.question) }, ...e.items.map(([role, content]) => ({ role, content }))];
    const output: TaskOutput = { index, status: e.status, result: e.result ?? null, history };
    lines.push({ index, error: null, info: null, output, time: { timestamp: 1700000000000 + index, str: '2023-11-14 22:13:20' } });
    const family = e.id.split('_')[0]!;
    const rounds = e.rounds ?? history.filter((h) => h.role === 'agent').length;
    grades.push({
      index,
      id: e.id,
      family,
      status: e.status,
      correct: e.correct,
      grade: {
        correct: e.correct,
        ...(e.reference !== undefined ? { reference: e.reference } : {}),
        checks: e.checks ?? [{ name: 'answer', pass: e.correct, expected: e.reference, actual: e.result }],
      },
      rounds,
      promptTokens: 1000 * rounds,
      completionTokens: 20 * rounds,
      ms: 10,
    });
  });
  const correct = grades.filter((g) => g.correct).length;
  const fam: RunSummary['perFamily'] = {};
  for (const g of grades) {
    const f = (fam[g.family] ??= { correct: 0, total: 0, sr: 0 });
    f.total++;
    if (g.correct) f.correct++;
    f.sr = f.correct / f.total;
  }
  const statusCounts: Record<string, number> = {};
  for (const g of grades) statusCounts[g.status] = (statusCounts[g.status] ?? 0) + 1;
  const summary: RunSummary = {
    total: grades.length,
    correct,
    successRate: correct / grades.length,
    querySR: 0,
    actionSR: 0,
    perFamily: fam,
    statusCounts,
    tokens: { prompt: 0, completion: 0 },
    wallMs: 0,
    manifest: {
      harnessVersion: 'test',
      taskSet: { name: taskSetName, sha256: '0'.repeat(64), count: grades.length },
      promptTemplateSha256: '',
      functionsSha256: '',
      world: { name: 'crafted', fingerprint: 'x' },
      apiBase: BASE,
      postMode: 'official',
      maxRounds: 8,
      agent: { name: agent, config: {} },
    },
  };
  writeFileSync(join(dir, 'runs.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeFileSync(join(dir, 'grades.jsonl'), grades.map((g) => JSON.stringify(g)).join('\n') + '\n');
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
  writeFileSync(
    join(dir, 'overall.json'),
    JSON.stringify({ total: grades.length, validation: {}, custom: { 'success rate': correct / grades.length, raw_results: lines.map((l) => l.output) } }),
  );
  return dir;
}

const MRN = 'S1234567';
const Q = {
  task1: (name: string) =>
    `What’s the MRN of the patient with name ${name} and DOB of 1950-01-01? If the patient does not exist, the answer should be "Patient not found"`,
  task2: (m: string) => `What's the age of the patient with MRN of ${m}?`,
  task3: (m: string) => `I just measured the blood pressure for patient with MRN of ${m}, and it is "118/77 mmHg". Help me record it.`,
  task4: (m: string) => `What’s the most recent magnesium level of the patient ${m} within last 24 hours?`,
  task5: (m: string) =>
    `Check patient ${m}'s last serum magnesium level within last 24 hours. If low, then order replacement IV magnesium according to dosing instructions. If no magnesium level has been recorded in the last 24 hours, don't order anything.\n`,
  task6: (m: string) => `What is the average CBG of the patient ${m} over the last 24 hours?`,
  task7: (m: string) => `What is the most recent CBG of the patient ${m}?`,
  task8: (m: string) =>
    `Order orthopedic surgery referral for patient ${m}. Specify within the free text of the referral, "Situation: acute left knee injury…"`,
  task9: (m: string) =>
    `Check patient ${m}'s most recent potassium level. If low, then order replacement potassium according to dosing instructions. Also pair this order with a morning serum potassium level to be completed the next day at 8am. \n`,
  task10: (m: string) =>
    `What’s the last HbA1C (hemoglobin A1C) value in the chart for patient ${m} and when was it recorded? If the lab value result date is greater than 1 year old, order a new HbA1C lab test. `,
};
const patientBundle = (mrn: string, birthDate: string) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  total: 1,
  entry: [{ resource: { resourceType: 'Patient', id: mrn, identifier: [{ value: mrn }], birthDate } }],
});
const ORDER = (m: string) => JSON.stringify({ resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${m}` } });

/**
 * A model scripted to show each behaviour exactly once (13 episodes), plus one clean episode.
 * Expected: every behaviour counted in exactly one task, in the family noted.
 */
export const ONE_OF_EACH: Record<string, { family: string; episode: Episode }> = {
  prose: {
    family: 'task2',
    episode: {
      id: 'task2_1',
      question: Q.task2(MRN),
      items: [['agent', 'The patient is 60 years old.']],
      status: 'agent invalid action',
      correct: false,
      reference: [60],
    },
  },
  think: {
    family: 'task7',
    episode: {
      id: 'task7_1',
      question: Q.task7(MRN),
      items: [['agent', `<think>I need the glucose values.</think>\nGET ${BASE}Observation?patient=${MRN}&code=GLU`]],
      status: 'agent invalid action',
      correct: false,
      reference: [129],
    },
  },
  fence: {
    family: 'task7',
    episode: {
      id: 'task7_2',
      question: Q.task7(MRN),
      items: [
        ['agent', `\`\`\`\nGET ${BASE}Observation?patient=${MRN}&code=GLU&_sort=-date\n\`\`\``],
        ['user', GET_OK(bundle([obs(129, '2023-11-12T09:00:00+00:00', 'GLU')]))],
        ['agent', 'FINISH([129])'],
      ],
      status: 'completed',
      result: '[129]',
      correct: true,
      reference: [129],
    },
  },
  'finish-not-json': {
    family: 'task1',
    episode: {
      id: 'task1_29',
      question: Q.task1('Debra Dunn'),
      items: [['agent', 'FINISH(Patient not found)']],
      status: 'completed',
      result: 'Patient not found',
      correct: false,
      reference: ['Patient not found'],
    },
  },
  'invalid-post-json': {
    family: 'task3',
    episode: {
      id: 'task3_1',
      question: Q.task3(MRN),
      items: [
        ['agent', `POST ${BASE}Observation\n{"resourceType": "Observation",`],
        ['user', POST_BAD],
        ['agent', 'FINISH([])'],
      ],
      status: 'completed',
      result: '[]',
      correct: false,
    },
  },
  'wrong-post-url': {
    family: 'task8',
    episode: {
      id: 'task8_1',
      question: Q.task8(MRN),
      items: [
        ['agent', `POST ${BASE}/ServiceRequest\n${ORDER(MRN)}`],
        ['user', POST_OK],
        ['agent', 'FINISH([])'],
      ],
      status: 'completed',
      result: '[]',
      correct: false,
      checks: [
        { name: 'posts', pass: true, expected: 1, actual: 1 },
        { name: 'url', pass: false, expected: `${BASE}ServiceRequest`, actual: `${BASE}/ServiceRequest` },
      ],
    },
  },
  'post-in-read-only': {
    family: 'task4',
    episode: {
      id: 'task4_1',
      question: Q.task4(MRN),
      items: [
        ['agent', `POST ${BASE}ServiceRequest\n${ORDER(MRN)}`],
        ['user', POST_OK],
        ['agent', 'FINISH([-1])'],
      ],
      status: 'completed',
      result: '[-1]',
      correct: false,
      reference: [-1],
    },
  },
  'fabricated-action': {
    family: 'task5',
    episode: {
      id: 'task5_1',
      question: Q.task5(MRN),
      items: [['agent', 'FINISH(["Ordered IV magnesium replacement"])']],
      status: 'completed',
      result: '["Ordered IV magnesium replacement"]',
      correct: false,
      reference: [1.8],
    },
  },
  'self-contradiction': {
    family: 'task7',
    episode: {
      id: 'task7_3',
      question: Q.task7(MRN),
      items: [
        ['agent', `GET ${BASE}Observation?patient=${MRN}&code=GLU&_sort=-date`],
        ['user', GET_OK(bundle([obs(135, '2023-11-01T09:00:00+00:00', 'GLU')]))],
        ['agent', 'FINISH([-1])'],
      ],
      status: 'completed',
      result: '[-1]',
      correct: false,
      reference: [135],
    },
  },
  'stale-value': {
    family: 'task7',
    episode: {
      id: 'task7_4',
      question: Q.task7(MRN),
      items: [
        ['agent', `GET ${BASE}Observation?patient=${MRN}&code=GLU`],
        ['user', GET_OK(bundle([obs(120, '2021-02-01T09:00:00+00:00', 'GLU'), obs(131, '2023-11-02T09:00:00+00:00', 'GLU')], true))],
        ['agent', 'FINISH([120])'],
      ],
      status: 'completed',
      result: '[120]',
      correct: false,
      reference: [131],
    },
  },
  'wrong-patient': {
    family: 'task2',
    episode: {
      id: 'task2_2',
      question: Q.task2(MRN),
      items: [
        ['agent', `GET ${BASE}Patient?identifier=S7654321`],
        ['user', GET_OK(patientBundle('S7654321', '1963-05-01'))],
        ['agent', 'FINISH([60])'],
      ],
      status: 'completed',
      result: '[60]',
      correct: false,
      reference: [71],
    },
  },
  'round-limit': {
    family: 'task6',
    episode: {
      id: 'task6_1',
      question: Q.task6(MRN),
      items: Array.from(
        { length: 8 },
        (_, k) =>
          [
            ['agent', `GET ${BASE}Observation?patient=${MRN}&code=GLU&_count=${k + 1}`],
            ['user', GET_OK(bundle([]))],
          ] as Array<[HistoryItem['role'], string]>,
      ).flat(),
      status: 'task limit reached',
      correct: false,
      reference: [101.5],
    },
  },
  'context-limit': {
    family: 'task9',
    episode: {
      id: 'task9_1',
      question: Q.task9(MRN),
      items: [
        ['agent', `GET ${BASE}Observation?patient=${MRN}&code=K&_sort=-date`],
        ['user', GET_OK(bundle([obs(3.8, '2023-10-01T09:00:00+00:00', 'K')]))],
      ],
      status: 'agent context limit',
      correct: false,
      reference: [3.8],
    },
  },
};

export const CLEAN_EPISODE: Episode = {
  id: 'task10_1',
  question: Q.task10(MRN),
  items: [
    ['agent', `GET ${BASE}Observation?patient=${MRN}&code=A1C&_sort=-date`],
    ['user', GET_OK(bundle([obs(6.1, '2023-06-01T09:00:00+00:00', 'A1C')]))],
    ['agent', 'FINISH([6.1, "2023-06-01T09:00:00+00:00"])'],
  ],
  status: 'completed',
  result: '[6.1, "2023-06-01T09:00:00+00:00"]',
  correct: true,
  reference: [6.1, '2023-06-01T09:00:00+00:00'],
};

/** A correct answer after a GET whose response shows it (no behaviour). */
function solved(id: string, value: string | number): Episode {
  const fam = id.split('_')[0] as 'task1' | 'task2' | 'task7';
  const m = `S${String(1000000 + Number(id.split('_')[1]))}`;
  const question = fam === 'task1' ? Q.task1(`Name ${id}`) : Q[fam](m);
  const get =
    fam === 'task7'
      ? `GET ${BASE}Observation?patient=${m}&code=GLU&_sort=-date`
      : fam === 'task2'
        ? `GET ${BASE}Patient?identifier=${m}`
        : `GET ${BASE}Patient?name=Name&birthdate=1950-01-01`;
  const body =
    fam === 'task7' ? bundle([obs(value as number, '2023-11-10T09:00:00+00:00', 'GLU')]) : patientBundle(fam === 'task1' ? (value as string) : m, '1950-01-01');
  return {
    id,
    question,
    items: [
      ['agent', get],
      ['user', GET_OK(body)],
      ['agent', `FINISH(${JSON.stringify([value])})`],
    ],
    status: 'completed',
    result: JSON.stringify([value]),
    correct: true,
    reference: [value],
  };
}

const PAIR_IDS = ['task1_1', 'task1_2', 'task1_3', 'task1_4', 'task2_1', 'task2_2', 'task2_3', 'task2_4', 'task7_1', 'task7_2', 'task7_3', 'task7_4'];
const answerOf = (id: string): string | number =>
  id.startsWith('task1') ? `S${1000000 + Number(id.split('_')[1])}` : id.startsWith('task2') ? 73 : 100 + Number(id.split('_')[1]);
export const BASE_CORRECT = [1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0];
export const FT_CORRECT = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1];

/** Baseline: wrong tasks answer inside a ```json fence (an invalid action). */
export function baseEpisodes(): Episode[] {
  return PAIR_IDS.map((id, i) => {
    const ok = solved(id, answerOf(id));
    if (BASE_CORRECT[i]) return ok;
    return {
      ...ok,
      items: [ok.items[0]!, ok.items[1]!, ['agent', `\`\`\`json\nFINISH(${JSON.stringify([answerOf(id)])})\n\`\`\``]],
      status: 'agent invalid action',
      result: null,
      correct: false,
    };
  });
}

/** Fine-tuned: clean calls; task7_3 breaks with a <think> block, task2_4 answers a wrong age. */
export function ftEpisodes(): Episode[] {
  return PAIR_IDS.map((id, i) => {
    const ok = solved(id, answerOf(id));
    if (FT_CORRECT[i]) return ok;
    if (id === 'task7_3')
      return {
        ...ok,
        items: [ok.items[0]!, ok.items[1]!, ['agent', `<think>The latest value is ${answerOf(id)}.</think>\nFINISH([${answerOf(id)}])`]],
        status: 'agent invalid action',
        result: null,
        correct: false,
      };
    return { ...ok, items: [ok.items[0]!, ok.items[1]!, ['agent', 'FINISH([99])']], result: '[99]', correct: false };
  });
}

/** Run the CLI in-process, capturing its text output (binary chunks, the test runner's own protocol, pass through). */
import { cli } from './helpers/cli.js';
export { cli };

// ---------------------------------------------------------------------------------------------------------------
// Runs produced by the real `ehrgym eval` (embedded world, official harness and grader) with the mock model.

/** The JSON body of the last GET response in the conversation. */
export function lastBundle(req: MockRequest): {
  entry?: Array<{ resource: { effectiveDateTime?: string; birthDate?: string; valueQuantity?: { value: number } } }>;
} {
  const text = req.messages[req.messages.length - 1]!.content;
  const body = text.slice(text.indexOf('\n') + 1, text.lastIndexOf('. Please call FINISH'));
  return JSON.parse(body);
}

const FULL_ORDER = (mrn: string) =>
  JSON.stringify({
    resourceType: 'ServiceRequest',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '306181000000106' }] },
    authoredOn: '2023-11-13T10:15:00+00:00',
    status: 'active',
    intent: 'order',
    priority: 'stat',
    subject: { reference: `Patient/${mrn}` },
  });

/** A model scripted to show each behaviour exactly once (task id → behaviour → replies). */
export const SCRIPT: Record<string, { behaviour: string | null; reply: (req: MockRequest, mrn: string) => MockResponse }> = {
  task1_1: { behaviour: 'finish-not-json', reply: () => 'FINISH(Patient not found)' },
  task2_1: { behaviour: 'prose', reply: () => 'The patient is 60 years old.' },
  task2_2: { behaviour: 'wrong-patient', reply: (r) => (r.turn === 0 ? `GET ${BASE}Patient?identifier=S6534835` : 'FINISH([50])') },
  task2_3: {
    behaviour: null,
    reply: (r, mrn) => {
      if (r.turn === 0) return `GET ${BASE}Patient?identifier=${mrn}`;
      const [y, m, d] = lastBundle(r).entry![0]!.resource.birthDate!.split('-').map(Number) as [number, number, number];
      return `FINISH([${2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0)}])`;
    },
  },
  task3_1: { behaviour: 'invalid-post-json', reply: (r) => (r.turn === 0 ? `POST ${BASE}Observation\n{"resourceType": "Observation",` : 'FINISH([])') },
  task4_1: { behaviour: 'think', reply: (_r, mrn) => `<think>I should look up magnesium first.</think>\nGET ${BASE}Observation?patient=${mrn}&code=MG` },
  task4_2: { behaviour: 'post-in-read-only', reply: (r, mrn) => (r.turn === 0 ? `POST ${BASE}ServiceRequest\n${FULL_ORDER(mrn)}` : 'FINISH([-1])') },
  task5_1: { behaviour: 'fabricated-action', reply: () => 'FINISH(["Ordered IV magnesium replacement"])' },
  task6_1: { behaviour: 'round-limit', reply: (r, mrn) => `GET ${BASE}Observation?patient=${mrn}&code=GLU&_count=${r.turn + 1}` },
  task7_1: {
    behaviour: 'fence',
    reply: (r, mrn) =>
      r.turn === 0
        ? `\`\`\`\nGET ${BASE}Observation?patient=${mrn}&code=GLU&_sort=-date\n\`\`\``
        : `FINISH([${lastBundle(r).entry![0]!.resource.valueQuantity!.value}])`,
  },
  task7_2: {
    behaviour: 'self-contradiction',
    reply: (r, mrn) => (r.turn === 0 ? `GET ${BASE}Observation?patient=${mrn}&code=GLU&_sort=-date` : 'FINISH([-1])'),
  },
  task7_3: {
    behaviour: 'stale-value',
    reply: (r, mrn) => {
      if (r.turn === 0) return `GET ${BASE}Observation?patient=${mrn}&code=GLU`;
      const entries = lastBundle(r).entry!.map((e) => e.resource);
      const newest = [...entries].sort((a, b) => (a.effectiveDateTime! < b.effectiveDateTime! ? 1 : -1))[0]!;
      const old = [...entries]
        .sort((a, b) => (a.effectiveDateTime! < b.effectiveDateTime! ? -1 : 1))
        .find((e) => e.valueQuantity!.value !== newest.valueQuantity!.value)!;
      return `FINISH([${old.valueQuantity!.value}])`;
    },
  },
  task8_1: { behaviour: 'wrong-post-url', reply: (r, mrn) => (r.turn === 0 ? `POST ${BASE}/ServiceRequest\n${FULL_ORDER(mrn)}` : 'FINISH([])') },
  task9_1: {
    behaviour: 'context-limit',
    reply: (r, mrn) => (r.turn === 0 ? `GET ${BASE}Observation?patient=${mrn}&code=K&_sort=-date` : { fault: 'context-limit' }),
  },
};

export const V2_TASKS: TaskCase[] = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8'));

/**
 * `ehrgym eval` of the mock model that shows each behaviour once (SCRIPT) on those 14 v2 tasks.
 * Returns the run folder and the task file (to run other agents on the same tasks).
 */
export async function runBehaviourModel(dir: string, taskFile: string): Promise<void> {
  const { startMockOpenAI } = await import('../src/agent/mock-openai.js');
  const byId = new Map(V2_TASKS.map((t) => [t.id, t]));
  const ids = Object.keys(SCRIPT);
  writeFileSync(taskFile, JSON.stringify(ids.map((id) => byId.get(id)!)));
  const byQuestion = new Map(ids.map((id) => [byId.get(id)!.instruction, id]));
  const mock = await startMockOpenAI({
    script: (req) => {
      const id = [...byQuestion.entries()].find(([q]) => req.prompt.endsWith(`Question: ${q}`))?.[1];
      if (!id) return 'FINISH([])';
      return SCRIPT[id]!.reply(req, byId.get(id)!.eval_MRN ?? '');
    },
  });
  try {
    const ev = await cli(
      'eval',
      '--agent',
      'openai:behaviour-model',
      '--base-url',
      mock.url,
      '--tasks',
      taskFile,
      '--out',
      dir,
      '--no-progress',
      '--concurrency',
      '2',
      '--max-retries',
      '0',
    );
    if (ev.code !== 0) throw new Error(`ehrgym eval failed: ${ev.err}`);
  } finally {
    await mock.close();
  }
}
