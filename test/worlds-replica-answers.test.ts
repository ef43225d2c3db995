/**
 * The replica world reproduces the reference answers of all 300 MedAgentBench tasks when they are computed the way
 * the official grader computes them: GET `Observation?patient=MRN&code=X&_count=5000&_format=json`, scan in server
 * order, latest by strict `>` on effectiveDateTime, 24 h windows `>= NOW-24h` without upper bound, task6 mean of all
 * GLU in the window, task2 age from `Patient?identifier=MRN` entry[0].birthDate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FhirStore } from '../src/fhir/store.js';
import { loadReplica } from '../src/worlds/medagentbench.js';
import type { Resource } from '../src/fhir/types.js';
import { replicaTransport, type GetJson } from './worlds-helpers.js';

const NOW = Date.parse('2023-11-13T10:15:00+00:00');
const CUTOFF = NOW - 24 * 3600_000;
const BASE = 'http://localhost:8080/fhir/';
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/;

interface DerivedTask {
  id: string;
  family: string;
  eval_MRN?: string;
  branch: string;
  expected_finish: unknown;
  latest_MG_within_24h?: number | null;
  mean_GLU_within_24h?: number | null;
  latest_GLU?: number | null;
  latest_K_any_time?: number | null;
  latest_A1C?: { value: number; effectiveDateTime: string } | null;
}
const derived = (JSON.parse(readFileSync('test/fixtures/medagentbench/expected_answers_v2.DERIVED.json', 'utf8')) as { tasks: DerivedTask[] }).tasks;
const taskFile = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8')) as Array<{
  id: string;
  instruction: string;
  sol?: string[];
}>;

/** Official-grader-style scan of one patient's observations of one code. */
async function scan(get: GetJson, mrn: string, code: string) {
  const bundle = (await get(`${BASE}Observation?patient=${mrn}&code=${code}&_count=5000&_format=json`)) as {
    entry?: Array<{ resource: Resource }>;
    link?: Array<{ relation: string }>;
  };
  // At most 5000 per (patient, code): the grader reads a single page.
  assert.ok(!bundle.link?.some((l) => l.relation === 'next'), `${mrn} ${code}: more than one page at _count=5000`);
  const entries = bundle.entry ?? [];
  for (const e of entries) {
    const r = e.resource;
    assert.match(r.effectiveDateTime, TIME_RE, `${mrn} ${code} ${r.id}: effectiveDateTime`);
    assert.equal(typeof r.valueQuantity?.value, 'number', `${mrn} ${code} ${r.id}: valueQuantity.value`);
  }
  return entries.map((e) => ({
    t: Date.parse(e.resource.effectiveDateTime),
    raw: e.resource.effectiveDateTime as string,
    v: e.resource.valueQuantity.value as number,
  }));
}
function latest(rows: Array<{ t: number; raw: string; v: number }>, from = -Infinity) {
  let best: { t: number; raw: string; v: number } | undefined;
  for (const r of rows) if (r.t >= from && (best === undefined || r.t > best.t)) best = r;
  return best;
}

/** Compute every task's reference value from the world and list the mismatches with the DERIVED file. */
export async function mismatches(get: GetJson): Promise<string[]> {
  const bad: string[] = [];
  const eq = (id: string, actual: unknown, expected: unknown) => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) bad.push(`${id}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  };
  for (const t of derived) {
    const mrn = t.eval_MRN!;
    switch (t.family) {
      case 'task1': {
        // The patient lookup an agent would do: given + family + birthdate.
        const task = taskFile.find((x) => x.id === t.id)!;
        const m = /name (\S+) (\S+) and DOB of (\d{4}-\d{2}-\d{2})/.exec(task.instruction)!;
        const b = (await get(`${BASE}Patient?given=${m[1]}&family=${m[2]}&birthdate=${m[3]}&_format=json`)) as { entry?: Array<{ resource: Resource }> };
        const ids = (b.entry ?? []).map((e) => e.resource.id);
        eq(t.id, ids.length ? ids : ['Patient not found'], task.sol);
        break;
      }
      case 'task2': {
        const b = (await get(`${BASE}Patient?identifier=${mrn}&_format=json`)) as { entry: Array<{ resource: Resource }> };
        const [y, mo, d] = (b.entry[0]!.resource.birthDate as string).split('-').map(Number) as [number, number, number];
        const age = 2023 - y - (mo > 11 || (mo === 11 && d > 13) ? 1 : 0);
        eq(t.id, [age], t.expected_finish);
        break;
      }
      case 'task4':
      case 'task5': {
        const l = latest(await scan(get, mrn, 'MG'), CUTOFF);
        eq(t.id, l ? l.v : null, t.latest_MG_within_24h ?? null);
        break;
      }
      case 'task6': {
        let sum = 0;
        let n = 0;
        for (const r of await scan(get, mrn, 'GLU'))
          if (r.t >= CUTOFF) {
            sum += r.v;
            n++;
          }
        eq(t.id, n ? sum / n : null, t.mean_GLU_within_24h ?? null);
        break;
      }
      case 'task7': {
        const l = latest(await scan(get, mrn, 'GLU'));
        eq(t.id, l ? l.v : null, t.latest_GLU ?? null);
        break;
      }
      case 'task9': {
        const l = latest(await scan(get, mrn, 'K'));
        eq(t.id, l ? l.v : null, t.latest_K_any_time ?? null);
        break;
      }
      case 'task10': {
        const l = latest(await scan(get, mrn, 'A1C'));
        eq(t.id, l ? { value: l.v, effectiveDateTime: l.raw } : null, t.latest_A1C ?? null);
        break;
      }
      default:
        break; // task3 / task8: POST-only families, nothing read from the server
    }
  }
  return bad;
}

const store = new FhirStore();
const build = loadReplica(store);
store.freeze();
const get = await replicaTransport(store);

test('all 300 reference answers come out as in expected_answers_v2.DERIVED.json', async () => {
  assert.equal(derived.length, 300);
  const bad = await mismatches(get);
  assert.deepEqual(bad, []);
});

test('the check fails when the planted facts are broken (an MG inside the window for a "no MG" patient)', async () => {
  // task4_1: S3032536 has no MG in the last 24 h; a session write adds one at NOW - 1 h (the base stays untouched).
  store.create(
    {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: 'MG', display: 'MG' }], text: 'MG' },
      subject: { reference: 'Patient/S3032536' },
      effectiveDateTime: '2023-11-13T09:15:00+00:00',
      valueQuantity: { value: 1.7, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    },
    'broken',
  );
  const bad = await mismatches(await replicaTransport(store, 'broken'));
  assert.ok(
    bad.some((b) => b.startsWith('task4_1:')),
    bad.join('\n'),
  );
  assert.equal(bad.length, 1, bad.join('\n'));
  assert.deepEqual(await mismatches(get), []);
});

test('no clinical data after NOW; non-cohort patients have no MG/K/GLU/A1C; volume and shape', async () => {
  for (const [type, param] of [
    ['Observation', 'date'],
    ['Procedure', 'date'],
    ['Condition', 'onset-date'],
    ['MedicationRequest', 'authoredon'],
  ] as const) {
    const b = (await get(`${BASE}${type}?${param}=gt2023-11-13T10:15:00%2B00:00&_count=1&_format=json`)) as { total?: number; entry?: unknown[] };
    assert.equal(b.entry?.length ?? 0, 0, `${type} after NOW`);
  }
  const cohort = new Set(build.patients.slice(0, 100).map((p) => p.id));
  for (const code of ['MG', 'K', 'GLU', 'A1C']) {
    const res = store.search('Observation', `code=${code}`);
    for (const h of res.handles) {
      const r = store.resourceOf('Observation', h);
      const pid = (r.subject.reference as string).slice('Patient/'.length);
      assert.ok(cohort.has(pid), `${code} for non-cohort patient ${pid}`);
      assert.match(r.effectiveDateTime, TIME_RE, `${code} ${r.id}`);
      assert.ok(Number.isFinite(Number(r.valueQuantity?.value)), `${code} ${r.id}: valueQuantity.value`);
    }
  }
  const counts = build.clinical.counts();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  assert.ok(total >= 400_000, `total ${total}`);
  for (const t of ['Observation', 'Procedure', 'Condition', 'MedicationRequest']) assert.ok((counts[t] ?? 0) > 1000, t);
  // Patients: exact JSON of the snapshot, in server order.
  const snap = JSON.parse(readFileSync('test/fixtures/medagentbench/partial-fhir-data/rushilcs_fhir_snapshot.jsonl', 'utf8').split('\n')[0]!);
  const page = (await get(`${BASE}Patient?_count=500&_format=json`)) as { entry: Array<{ resource: Resource }> };
  assert.deepEqual(
    page.entry.map((e) => e.resource),
    snap.data.entry.map((e: { resource: Resource }) => e.resource),
  );
});

test('"most recent" needs sorting or paging: the first page is not in date order for data-rich patients', async () => {
  const b = (await get(`${BASE}Observation?patient=S6329521&code=K&_format=json`)) as { entry: Array<{ resource: Resource }> };
  assert.equal(b.entry.length, 20);
  const times = b.entry.map((e) => e.resource.effectiveDateTime as string);
  assert.notDeepEqual(times, [...times].sort());
  assert.notDeepEqual(times, [...times].sort().reverse());
  const all = await scan(get, 'S6329521', 'K');
  assert.ok(all.length > 20, `K readings ${all.length}`);
});

test('lazy search keys equal the keys the store extracts from the materialised JSON', async () => {
  const { extractKeys } = await import('../src/fhir/extract.js');
  const c = build.clinical;
  for (let row = 0; row < c.size; row += 997) {
    const r = JSON.parse(JSON.stringify(c.materialize(row))) as Resource;
    assert.deepEqual(extractKeys(r), c.keys(row), `row ${row} (${r.resourceType}/${r.id})`);
  }
});

test('replays the recorded official-server snapshot: Patient?_count=500, 212 Patient?identifier, 848 empty Observation searches', async () => {
  const rows = readFileSync('test/fixtures/medagentbench/partial-fhir-data/rushilcs_fhir_snapshot.jsonl', 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { url: string; data: { total?: number; entry?: Array<{ fullUrl: string; resource: Resource }> } });
  let replayed = 0;
  for (const row of rows.slice(1)) {
    const u = new URL(row.url);
    const got = (await get(`${BASE}${u.pathname.replace(/^\/fhir\//, '')}${u.search}&_format=json`)) as {
      total?: number;
      entry?: Array<{ resource: Resource }>;
    };
    // The official server holds more than 500 patients (its `_count=500` page had a next link and no total); the
    // replica has exactly the 500 recorded ones, so only the entries of that page can be compared.
    if (!row.url.includes('Patient?_count=500')) assert.equal(got.total, row.data.total, row.url);
    assert.deepEqual(
      (got.entry ?? []).map((e) => e.resource),
      (row.data.entry ?? []).map((e) => e.resource),
      row.url,
    );
    replayed++;
  }
  assert.equal(replayed, 1061);
});

test('replays the 30 recorded task1 name + birthdate searches of the official server', async () => {
  const recorded = JSON.parse(readFileSync('test/fixtures/medagentbench/partial-fhir-data/udapy_prefetched-fhir-task1.json', 'utf8')) as Record<
    string,
    { total: number; link: Array<{ relation: string; url: string }>; entry?: Array<{ resource: Resource }> }
  >;
  assert.equal(Object.keys(recorded).length, 30);
  for (const [id, b] of Object.entries(recorded)) {
    const self = new URL(b.link.find((l) => l.relation === 'self')!.url);
    const got = (await get(`${BASE}Patient${self.search}&_format=json`)) as { total?: number; entry?: Array<{ resource: Resource }> };
    assert.equal(got.total, b.total, id);
    assert.deepEqual(
      (got.entry ?? []).map((e) => e.resource),
      (b.entry ?? []).map((e) => e.resource),
      id,
    );
  }
});

test('an agent that neither sorts nor pages gets "most recent" wrong for most task7/task9 patients', async () => {
  const tasks = JSON.parse(readFileSync('data/medagentbench/test_data_v2.json', 'utf8')) as Array<{ id: string; eval_MRN?: string }>;
  for (const [fam, code, min] of [
    ['task7', 'GLU', 20],
    ['task9', 'K', 15],
  ] as const) {
    let missed = 0;
    for (const t of tasks.filter((x) => x.id.startsWith(`${fam}_`))) {
      const page = (await get(`${BASE}Observation?patient=${t.eval_MRN}&code=${code}&_format=json`)) as { entry: Array<{ resource: Resource }> };
      const all = await scan(get, t.eval_MRN!, code);
      const best = latest(all)!;
      const pageBest = latest(
        page.entry.map((e) => ({ t: Date.parse(e.resource.effectiveDateTime), raw: e.resource.effectiveDateTime, v: e.resource.valueQuantity.value })),
      )!;
      if (pageBest.raw !== best.raw) missed++;
    }
    assert.ok(missed >= min, `${fam}: latest ${code} outside the default first page for ${missed}/30 patients`);
  }
});

test('the replica is identical in a fresh process (sample of every 499th record plus all patients)', async () => {
  const { execFileSync } = await import('node:child_process');
  const { createHash } = await import('node:crypto');
  const sample = (b: typeof build) => {
    const h = createHash('sha256');
    for (const p of b.patients) h.update(JSON.stringify(p));
    for (let i = 0; i < b.clinical.size; i += 499) h.update(JSON.stringify(b.clinical.materialize(i)));
    return `${b.clinical.size}:${h.digest('hex')}`;
  };
  const script =
    "import { buildReplica } from './src/worlds/medagentbench.ts'; import { createHash } from 'node:crypto';" +
    'const b = buildReplica(); const h = createHash("sha256");' +
    'for (const p of b.patients) h.update(JSON.stringify(p));' +
    'for (let i = 0; i < b.clinical.size; i += 499) h.update(JSON.stringify(b.clinical.materialize(i)));' +
    'process.stdout.write(`${b.clinical.size}:${h.digest("hex")}`);';
  const there = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(there, sample(build));
});
