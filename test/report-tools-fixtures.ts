/**
 * Tools-protocol runs for the report tests: a scripted tools agent (per task id: replies with text and tool calls)
 * played through the real episode loop by `runEval` on the embedded MedAgentBench replica, graded by the official
 * grader. `SCRIPTS` shows each behaviour the tools protocol can show once, plus tool errors, parallel calls, text
 * beside calls, a call after finish, tool-call markup left in the text and an empty reply.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import { embeddedBackend, type FhirBackend } from '../src/eval/backend.js';
import { runEval, type TaskSet } from '../src/eval/run.js';
import { officialGrader } from '../src/eval/setup.js';
import type { Agent, AgentReply, EpisodeInfo, ToolsReply, ToolsTurn } from '../src/agent/types.js';
import { getOkBody } from '../src/protocol/text.js';
import type { Protocol } from '../src/protocol/action.js';
import type { TaskCase } from '../src/tasks/types.js';
import { V2_TASKS } from './report-fixtures.js';

export const BASE = 'http://localhost:8080/fhir/';
const ORDER = (mrn: string) => ({
  resourceType: 'ServiceRequest',
  code: { coding: [{ system: 'http://snomed.info/sct', code: '306181000000106' }] },
  authoredOn: '2023-11-13T10:15:00+00:00',
  status: 'active',
  intent: 'order',
  priority: 'stat',
  subject: { reference: `Patient/${mrn}` },
});

/** What a scripted reply is: text (or null) and calls `[name, arguments]` (objects are sent as their JSON text). */
export interface Scripted {
  content?: string | null;
  calls?: Array<[string, string | Record<string, unknown>]>;
  contextLimit?: boolean;
}
export type Script = (round: number, turn: ToolsTurn, mrn: string) => Scripted;

/** The JSON body of the last GET answer the model got. */
interface Res {
  birthDate: string;
  effectiveDateTime: string;
  valueQuantity: { value: number };
}
function lastGet(turn: ToolsTurn): { entry?: Array<{ resource: Res }> } {
  const answers = turn.messages.filter((m) => m.role === 'tool');
  return JSON.parse(getOkBody(answers[answers.length - 1]!.content as string)!);
}
const ageOf = (birthDate: string): number => {
  const [y, m, d] = birthDate.split('-').map(Number) as [number, number, number];
  return 2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0);
};

/** A tools-protocol agent playing a script per task id (the text protocol is not its game). */
export class ToolsScriptAgent implements Agent {
  readonly config = { backend: 'scripted', policy: 'report-tools test script' };
  constructor(
    readonly name: string,
    private readonly scripts: Record<string, Script>,
  ) {}
  async act(): Promise<AgentReply> {
    throw new Error('tools protocol only');
  }
  async actTools(turn: ToolsTurn, ep: EpisodeInfo): Promise<ToolsReply> {
    const round = turn.messages.filter((m) => m.role === 'assistant').length;
    const r = this.scripts[ep.task.id]!(round, turn, ep.task.eval_MRN ?? '');
    if (r.contextLimit) return { content: null, toolCalls: [], contextLimit: true };
    return {
      content: r.content === undefined ? null : r.content,
      toolCalls: (r.calls ?? []).map(([name, args], i) => ({
        id: `call_${round + 1}_${i + 1}`,
        name,
        arguments: typeof args === 'string' ? args : JSON.stringify(args),
      })),
    };
  }
}

/** The behaviour each task shows in the tools protocol (null: none), and its script. */
export const SCRIPTS: Record<string, { behaviour: string | null; script: Script }> = {
  // the server left the call in the text: `model tool call in text`; recovered with recoverToolText
  task1_1: { behaviour: null, script: () => ({ content: '<tool_call>\n{"name": "finish", "arguments": {"answer": ["S6534835"]}}\n</tool_call>' }) },
  task2_1: { behaviour: 'prose', script: () => ({ content: 'The patient is 60 years old.' }) },
  task2_2: {
    behaviour: 'wrong-patient',
    script: (r) => (r === 0 ? { calls: [['patient_search', { identifier: 'S6534835' }]] } : { calls: [['finish', { answer: [50] }]] }),
  },
  // text beside calls, three calls in one reply (an unknown tool, arguments that are not JSON, a search), then the
  // right answer with a call after finish (not executed): no behaviour, correct
  task2_3: {
    behaviour: null,
    script: (r, turn, mrn) =>
      r === 0
        ? {
            content: 'Looking the patient up.',
            calls: [
              ['lookup_patient', { mrn }],
              ['patient_search', '{"identifier": '],
              ['patient_search', { identifier: mrn }],
            ],
          }
        : {
            calls: [
              ['finish', { answer: [ageOf(lastGet(turn).entry![0]!.resource.birthDate)] }],
              ['patient_search', { identifier: mrn }],
            ],
          },
  },
  task3_1: {
    behaviour: 'invalid-post-json',
    script: (r) => (r === 0 ? { calls: [['observation_create', '{"resourceType": "Observation",']] } : { calls: [['finish', { answer: [] }]] }),
  },
  // reasoning beside a call, then an empty reply
  task4_1: {
    behaviour: 'think',
    script: (r, _t, mrn) =>
      r === 0
        ? { content: '<think>I should look up magnesium first.</think>', calls: [['observation_search_labs', { patient: mrn, code: 'MG' }]] }
        : { content: '' },
  },
  task4_2: {
    behaviour: 'post-in-read-only',
    script: (r, _t, mrn) => (r === 0 ? { calls: [['service_request_create', ORDER(mrn)]] } : { calls: [['finish', { answer: [-1] }]] }),
  },
  task5_1: { behaviour: 'fabricated-action', script: () => ({ calls: [['finish', { answer: ['Ordered IV magnesium replacement'] }]] }) },
  task6_1: { behaviour: 'round-limit', script: (r, _t, mrn) => ({ calls: [['observation_search_labs', { patient: mrn, code: 'GLU', _count: r + 1 }]] }) },
  // text that reads like a text-protocol action is not executed in the tools protocol: prose, nothing else
  task7_1: { behaviour: 'prose', script: (_r, _t, mrn) => ({ content: `GET ${BASE}Patient?identifier=S6534835&code=GLU&mrn=${mrn}` }) },
  task7_2: {
    behaviour: 'self-contradiction',
    script: (r, _t, mrn) =>
      r === 0 ? { calls: [['observation_search_labs', { patient: mrn, code: 'GLU', _sort: '-date' }]] } : { calls: [['finish', { answer: [-1] }]] },
  },
  task7_3: {
    behaviour: 'stale-value',
    script: (r, turn, mrn) => {
      if (r === 0) return { calls: [['observation_search_labs', { patient: mrn, code: 'GLU' }]] };
      const entries = lastGet(turn).entry!.map((e) => e.resource);
      const newest = [...entries].sort((a, b) => (a.effectiveDateTime < b.effectiveDateTime ? 1 : -1))[0]!;
      const old = [...entries]
        .sort((a, b) => (a.effectiveDateTime < b.effectiveDateTime ? -1 : 1))
        .find((e) => e.valueQuantity.value !== newest.valueQuantity.value)!;
      return { calls: [['finish', { answer: [old.valueQuantity.value] }]] };
    },
  },
  // a POST through a create tool goes to <api_base>ServiceRequest: no wrong-post-url (the api base is the manifest's)
  task8_1: {
    behaviour: null,
    script: (r, _t, mrn) => (r === 0 ? { calls: [['service_request_create', ORDER(mrn)]] } : { calls: [['finish', { answer: [] }]] }),
  },
  task9_1: {
    behaviour: 'context-limit',
    script: (r, _t, mrn) => (r === 0 ? { calls: [['observation_search_labs', { patient: mrn, code: 'K', _sort: '-date' }]] } : { contextLimit: true }),
  },
};

export const IDS = Object.keys(SCRIPTS);
export const byId = new Map(V2_TASKS.map((t) => [t.id, t]));
const tasks: TaskCase[] = IDS.map((id) => byId.get(id)!);
export const taskSet: TaskSet = { name: 'report-tools', tasks, sha256: createHash('sha256').update(JSON.stringify(tasks)).digest('hex') };

let backend: FhirBackend | undefined;

/** The replica backend, built once per process. */
function replica(): FhirBackend {
  if (!backend) {
    const store = new FhirStore();
    loadReplica(store);
    backend = embeddedBackend(store, { name: 'medagentbench', fingerprint: 'test-replica' }, BASE);
  }
  return backend;
}

/** `runEval` into `<dir>/<name>` (4 rounds; POSTs live in the tools protocols, as the CLI does); returns the folder. */
export async function runInto(
  dir: string,
  name: string,
  agent: Agent,
  protocol: Protocol,
  extra: { recoverToolText?: boolean; set?: TaskSet } = {},
): Promise<string> {
  const out = join(dir, name);
  const r = await runEval({
    out,
    taskSet: extra.set ?? taskSet,
    agent,
    backend: replica(),
    grade: officialGrader,
    protocol,
    postMode: protocol === 'text' ? 'official' : 'live',
    recoverToolText: extra.recoverToolText,
    maxRounds: 4,
    concurrency: 2,
    progress: false,
    fsync: false,
  });
  assert.ok(r.summary, `${name}: run not finished (${r.stopped ?? ''})`);
  return out;
}

/** A task set of some of the v2 tasks. */
export const subset = (...ids: string[]): TaskSet => ({ ...taskSet, tasks: ids.map((id) => byId.get(id)!) });

/** The tools agent playing `SCRIPTS`. */
export const script = (): Agent => new ToolsScriptAgent('tools-script', Object.fromEntries(IDS.map((id) => [id, SCRIPTS[id]!.script])));

/** Tool names, arguments and text no report or page may turn into markup. */
export const HOSTILE_NAME = '<script>alert(1)</script>`x`|y';
export const HOSTILE_ARG =
  '<img src=x onerror="window.__pwned=1"> [link](javascript:alert(3)) ![p](javascript:alert(4)) | cell ``` <b onmouseover=alert(5)>b</b>';

/** Calls a hostile tool and a real one with hostile arguments beside hostile text, then answers in hostile text. */
export const hostileScript: Script = (r) =>
  r === 0
    ? {
        content: `${HOSTILE_ARG}\n<think>${HOSTILE_ARG}</think>`,
        calls: [
          [HOSTILE_NAME, { q: HOSTILE_ARG, [HOSTILE_ARG]: 1 }],
          ['patient_search', HOSTILE_ARG],
        ],
      }
    : { content: HOSTILE_ARG };

/** A tools agent playing `hostileScript` on task2_1. */
export const hostileAgent = (): Agent => new ToolsScriptAgent('hostile', { task2_1: hostileScript });
