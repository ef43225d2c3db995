/**
 * Test helpers for the task layer: a fake FHIR transport serving hand-built bundles, and a minimal copy of the
 * official episode loop (`start_sample`; src/agent/loop.ts) to run expert solvers.
 */
import type { FhirHttpRequest, FhirHttpResponse, FhirTransport } from '../../src/fhir/types.js';
import type { HistoryItem, TaskCase, TaskOutput, TaskFamily } from '../../src/tasks/types.js';
import { GET_REPLY_PREFIX, GET_REPLY_SUFFIX, POST_ACCEPTED_REPLY } from '../../src/tasks/common.js';
import { pyJsonLoads } from '../../src/tasks/pysem.js';

export const BASE = 'http://localhost:8080/fhir/';
export const FHIR_JSON = 'application/fhir+json;charset=utf-8';

export interface Obs {
  t: string;
  v: number | null | string;
  /** raw JSON text of the value instead of JSON.stringify(v) */
  raw?: string;
}

export interface FakeWorld {
  patients: Record<string, { given: string[]; family: string; birthDate: string }>;
  /** labs[mrn][code] = observations in server (insertion) order */
  labs: Record<string, Record<string, Obs[]>>;
  contentType?: string;
  /** status to answer for every request (e.g. 500) */
  status?: number;
}

function obsJson(mrn: string, code: string, o: Obs, id: number): string {
  const value = o.raw ?? JSON.stringify(o.v);
  return `{"resource": {"resourceType": "Observation", "id": "${id}", "code": {"coding": [{"system": "http://loinc.org", "code": "${code}"}]}, "subject": {"reference": "Patient/${mrn}"}, "effectiveDateTime": ${JSON.stringify(o.t)}, "valueQuantity": {"value": ${value}, "unit": "x"}}}`;
}

function patientJson(mrn: string, p: FakeWorld['patients'][string]): string {
  return JSON.stringify({
    resource: {
      resourceType: 'Patient',
      id: mrn,
      identifier: [{ use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: mrn }],
      name: [{ use: 'official', family: p.family, given: p.given }],
      birthDate: p.birthDate,
    },
  });
}

function bundle(entries: string[]): string {
  return entries.length
    ? `{"resourceType": "Bundle", "type": "searchset", "total": ${entries.length}, "entry": [${entries.join(', ')}]}`
    : '{"resourceType": "Bundle", "type": "searchset", "total": 0}';
}

/** A transport answering the few searches graders, generators and solvers use. */
export function fakeTransport(world: FakeWorld, log?: string[]): FhirTransport {
  return async (req: FhirHttpRequest): Promise<FhirHttpResponse> => {
    log?.push(req.url);
    const ct = world.contentType ?? FHIR_JSON;
    if (world.status) return { status: world.status, contentType: ct, body: '{"resourceType": "OperationOutcome"}' };
    const u = new URL(req.url);
    const q = u.searchParams;
    const type = u.pathname.replace(/^\/fhir\//, '');
    if (type === 'Observation') {
      const mrn = q.get('patient') ?? '';
      const code = q.get('code') ?? '';
      let list = (world.labs[mrn]?.[code] ?? []).map((o, i) => ({ o, i }));
      if (q.get('_sort') === '-date') list = list.slice().sort((a, b) => (a.o.t < b.o.t ? 1 : a.o.t > b.o.t ? -1 : a.i - b.i));
      const count = Number(q.get('_count') ?? 20);
      return { status: 200, contentType: ct, body: bundle(list.slice(0, count).map(({ o, i }) => obsJson(mrn, code, o, 1000 + i))) };
    }
    if (type === 'Patient') {
      let ids = Object.keys(world.patients);
      if (q.has('identifier')) ids = ids.filter((id) => id === q.get('identifier'));
      if (q.has('birthdate')) ids = ids.filter((id) => world.patients[id].birthDate === q.get('birthdate'));
      if (q.has('family')) ids = ids.filter((id) => world.patients[id].family.toLowerCase().startsWith(q.get('family')!.toLowerCase()));
      if (q.has('given')) ids = ids.filter((id) => world.patients[id].given.some((g) => g.toLowerCase().startsWith(q.get('given')!.toLowerCase())));
      for (const n of q.getAll('name')) {
        ids = ids.filter((id) => [...world.patients[id].given, world.patients[id].family].some((x) => x.toLowerCase().startsWith(n.toLowerCase())));
      }
      return { status: 200, contentType: ct, body: bundle(ids.map((id) => patientJson(id, world.patients[id]))) };
    }
    return { status: 400, contentType: ct, body: '{"resourceType": "OperationOutcome"}' };
  };
}

/** Build a history: the prompt, then each agent message followed by the harness's reply (none after the last). */
export function historyOf(...agent: string[]): HistoryItem[] {
  const h: HistoryItem[] = [{ role: 'user', content: 'PROMPT' }];
  agent.forEach((content, i) => {
    h.push({ role: 'agent', content });
    if (i === agent.length - 1 && /^\s*FINISH\(/.test(content)) return;
    const r = content.trim().split('```tool_code').join('').split('```').join('').trim();
    if (r.startsWith('GET')) h.push({ role: 'user', content: `${GET_REPLY_PREFIX}{}${GET_REPLY_SUFFIX}` });
    else if (r.startsWith('POST')) {
      let ok = true;
      try {
        pyJsonLoads(r.split('\n').slice(1).join('\n'));
      } catch {
        ok = false;
      }
      h.push({ role: 'user', content: ok ? POST_ACCEPTED_REPLY : 'Invalid POST request' });
    }
  });
  return h;
}

/** A completed output whose last agent message is `FINISH(<result>)`. */
export function finished(result: string, ...before: string[]): TaskOutput {
  return { index: 0, status: 'completed', result, history: historyOf(...before, `FINISH(${result})`) };
}

/** The official loop, minimally: GET through the transport with `&_format=json`, POST accepted, FINISH ends. */
export async function runMini(
  task: TaskCase,
  family: TaskFamily,
  fhir: FhirTransport,
  opts: { apiBase?: string; variant?: string; maxRounds?: number } = {},
): Promise<TaskOutput> {
  const apiBase = opts.apiBase ?? BASE;
  const history: HistoryItem[] = [{ role: 'user', content: 'PROMPT' }];
  for (let round = 0; round < (opts.maxRounds ?? 8); round++) {
    const content = family.solve(task, history, { apiBase, variant: opts.variant });
    history.push({ role: 'agent', content });
    const r = content.trim().split('```tool_code').join('').split('```').join('').trim();
    if (r.startsWith('GET')) {
      const url = r.slice(3).trim() + '&_format=json';
      const res = await fhir({ method: 'GET', url });
      history.push({
        role: 'user',
        content: res.status >= 400 ? `Error in sending the GET request: ${res.status} Client Error` : `${GET_REPLY_PREFIX}${res.body}${GET_REPLY_SUFFIX}`,
      });
    } else if (r.startsWith('POST')) {
      let ok = true;
      try {
        pyJsonLoads(r.split('\n').slice(1).join('\n'));
      } catch {
        ok = false;
      }
      history.push({ role: 'user', content: ok ? POST_ACCEPTED_REPLY : 'Invalid POST request' });
    } else if (r.startsWith('FINISH(')) {
      return { index: 0, status: 'completed', result: r.slice('FINISH('.length, -1), history };
    } else {
      return { index: 0, status: 'agent invalid action', result: null, history };
    }
  }
  return { index: 0, status: 'task limit reached', result: null, history };
}
