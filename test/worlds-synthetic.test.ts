/**
 * Synthetic cohorts: byte-identical for the same seed (content fingerprint computed in a separate process), MRNs and
 * identities by the conventions, every task branch and boundary covered on purpose, and planted facts that agree with
 * what the grader-style queries return over HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FhirStore } from '../src/fhir/store.js';
import { buildSynthetic, loadSynthetic, type PlantedFacts, type SyntheticBuild } from '../src/worlds/synthetic.js';
import { FEMALE_GIVEN, MALE_GIVEN } from '../src/worlds/names.js';
import { loadWorld } from '../src/worlds/index.js';
import type { Resource } from '../src/fhir/types.js';
import { replicaTransport, type GetJson } from './worlds-helpers.js';

const NOW = Date.parse('2023-11-13T10:15:00+00:00');
const CUTOFF = NOW - 24 * 3600_000;
const BASE = 'http://localhost:8080/fhir/';

/** sha256 over the canonical JSON of every resource in insertion order (patients, then clinical rows). */
function contentFingerprint(b: SyntheticBuild): string {
  const h = createHash('sha256');
  for (const p of b.patients) h.update(JSON.stringify(p)).update('\n');
  for (let i = 0; i < b.clinical.size; i++) h.update(JSON.stringify(b.clinical.materialize(i))).update('\n');
  return h.digest('hex');
}

const N = 26;
const store = new FhirStore();
const build = loadSynthetic(store, { seed: 7, patients: N });
store.freeze();
const get = await replicaTransport(store);

test('same seed → byte-identical world (fingerprint from a fresh process); other seed → different', () => {
  const here = contentFingerprint(build);
  const script =
    "import { buildSynthetic } from './src/worlds/synthetic.ts'; import { createHash } from 'node:crypto';" +
    `const b = buildSynthetic({ seed: 7, patients: ${N} }); const h = createHash('sha256');` +
    "for (const p of b.patients) h.update(JSON.stringify(p)).update('\\n');" +
    "for (let i = 0; i < b.clinical.size; i++) h.update(JSON.stringify(b.clinical.materialize(i))).update('\\n');" +
    'process.stdout.write(h.digest("hex"));';
  const there = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(there, here);
  assert.notEqual(contentFingerprint(buildSynthetic({ seed: 8, patients: N })), here);
});

test('loadWorld fingerprint is deterministic and seed-sensitive', async () => {
  const a = await loadWorld({ world: 'synthetic', seed: 3, patients: 5 });
  const b = await loadWorld({ world: 'synthetic', seed: 3, patients: 5 });
  const c = await loadWorld({ world: 'synthetic', seed: 4, patients: 5 });
  assert.equal(a.fingerprint, b.fingerprint);
  assert.notEqual(a.fingerprint, c.fingerprint);
  assert.equal(a.contentFingerprint(), b.contentFingerprint());
  assert.notEqual(a.contentFingerprint(), c.contentFingerprint());
  assert.equal(a.counts.Patient, 5);
  assert.equal(a.facts?.length, 5);
});

test('identities: S9 MRNs outside the replica, gender-coherent names, 555-01XX phones, example.org e-mails', () => {
  const shipped = readFileSync('data/medagentbench/patients.ndjson', 'utf8');
  const replica = new Set<string>(shipped.match(/S\d{7}/g) ?? []);
  const mrns = new Set<string>();
  for (const p of build.patients) {
    assert.match(p.id!, /^S9\d{6}$/);
    assert.ok(!replica.has(p.id!), p.id);
    assert.ok(!mrns.has(p.id!));
    mrns.add(p.id!);
    assert.equal(p.identifier[0].value, p.id);
    assert.equal(p.identifier[0].system, undefined);
    const given = p.name[0].given[0];
    assert.ok((p.gender === 'female' ? FEMALE_GIVEN : MALE_GIVEN).includes(given), `${given} is ${p.gender}`);
    assert.match(p.telecom[0].value, /^555-01\d\d$/);
    assert.match(p.telecom[1].value, /@example\.org$/);
  }
});

test('every branch and boundary is planted', () => {
  const f = build.facts;
  const set = (xs: Array<string | number | undefined>) => new Set(xs.filter((x) => x !== undefined));
  assert.deepEqual([...set(f.map((x) => x.mg.branch))].sort(), ['low_mild', 'low_moderate', 'low_severe', 'none', 'normal', 'stale']);
  for (const e of ['23h59', '24h00', '24h01']) assert.ok(set(f.map((x) => x.mg.edge)).has(e), `MG edge ${e}`);
  const mgValues = set(f.map((x) => x.mg.latest24h?.value));
  for (const v of [1.9, 1.5, 1.0, 0.9]) assert.ok(mgValues.has(v), `MG ${v}`);
  const kValues = set(f.map((x) => x.k.latest?.value));
  for (const v of [3.5, 3.4]) assert.ok(kValues.has(v), `K ${v}`);
  assert.deepEqual([...set(f.map((x) => x.k.branch))].sort(), ['low', 'none', 'normal']);
  assert.deepEqual([...set(f.map((x) => x.a1c.branch))].sort(), ['fresh', 'none', 'stale']);
  for (const e of ['364d', '365d', '366d']) assert.ok(set(f.map((x) => x.a1c.edge)).has(e), `A1C edge ${e}`);
  assert.ok(
    f.some((x) => x.a1c.latest?.time === '2022-11-13T10:15:00+00:00'),
    'A1C exactly one year old',
  );
  assert.deepEqual([...set(f.map((x) => x.glu.branch))].sort(), ['none', 'stale', 'window']);
  for (const e of ['24h00', '24h01']) assert.ok(set(f.map((x) => x.glu.edge)).has(e), `GLU edge ${e}`);
  assert.ok(
    f.some((x) => x.glu.mean24h !== null && !Number.isInteger(x.glu.mean24h)),
    'non-integer GLU mean',
  );
  assert.ok(f.some((x) => x.nearDuplicateKind === 'same-name-dob-shifted'));
  assert.ok(f.some((x) => x.nearDuplicateKind === 'same-dob-other-name'));
});

async function scan(g: GetJson, mrn: string, code: string) {
  const b = (await g(`${BASE}Observation?patient=${mrn}&code=${code}&_count=5000&_format=json`)) as { entry?: Array<{ resource: Resource }> };
  return (b.entry ?? []).map((e) => ({
    t: Date.parse(e.resource.effectiveDateTime),
    raw: e.resource.effectiveDateTime as string,
    v: e.resource.valueQuantity.value as number,
  }));
}
function latest(rows: Array<{ t: number; raw: string; v: number }>, from = -Infinity) {
  let best: { t: number; raw: string; v: number } | undefined;
  for (const r of rows) if (r.t >= from && (!best || r.t > best.t)) best = r;
  return best ? { value: best.v, time: best.raw } : null;
}

/** Grader-style answers per patient versus the planted facts. */
async function factMismatches(g: GetJson, facts: PlantedFacts[]): Promise<string[]> {
  const bad: string[] = [];
  const eq = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) bad.push(`${what}: server ${JSON.stringify(a)} vs planted ${JSON.stringify(b)}`);
  };
  for (const f of facts) {
    const mg = await scan(g, f.mrn, 'MG');
    eq(`${f.mrn} MG`, latest(mg, CUTOFF), f.mg.latest24h);
    if (f.mg.branch === 'none') eq(`${f.mrn} MG count`, mg.length, 0);
    if (f.mg.branch === 'stale') eq(`${f.mrn} MG older readings present`, mg.length > 0, true);
    eq(`${f.mrn} K`, latest(await scan(g, f.mrn, 'K')), f.k.latest);
    const glu = await scan(g, f.mrn, 'GLU');
    eq(`${f.mrn} GLU latest`, latest(glu), f.glu.latest);
    const win = glu.filter((r) => r.t >= CUTOFF);
    eq(`${f.mrn} GLU mean`, win.length ? win.reduce((s, r) => s + r.v, 0) / win.length : null, f.glu.mean24h);
    eq(`${f.mrn} A1C`, latest(await scan(g, f.mrn, 'A1C')), f.a1c.latest);
    const p = (await g(`${BASE}Patient?identifier=${f.mrn}&_format=json`)) as { entry: Array<{ resource: Resource }> };
    const [y, m, d] = (p.entry[0]!.resource.birthDate as string).split('-').map(Number) as [number, number, number];
    eq(`${f.mrn} age`, 2023 - y - (m > 11 || (m === 11 && d > 13) ? 1 : 0), f.age);
    const byName = (await g(`${BASE}Patient?given=${f.given}&family=${f.family}&birthdate=${f.birthDate}&_format=json`)) as {
      entry?: Array<{ resource: Resource }>;
    };
    eq(
      `${f.mrn} lookup`,
      (byName.entry ?? []).map((e) => e.resource.id),
      [f.mrn],
    );
  }
  return bad;
}

test('planted facts are what the grader-style queries return over HTTP', async () => {
  assert.deepEqual(await factMismatches(get, build.facts), []);
});

test('the facts check detects facts that do not belong to the patient (lab facts rotated by one patient)', async () => {
  const f = build.facts;
  const rotated = f.map((x, i) => ({ ...f[(i + 1) % f.length]!, mrn: x.mrn, given: x.given, family: x.family, birthDate: x.birthDate, age: x.age }));
  const bad = await factMismatches(get, rotated);
  assert.ok(bad.length >= f.length, bad.join('\n'));
});

test('history is MedAgentBench-like: > 20 K readings, out-of-order insertion, nothing after NOW', async () => {
  const f = build.facts.find((x) => x.k.branch !== 'none')!;
  const k = await scan(get, f.mrn, 'K');
  assert.ok(k.length > 20, `${k.length} K readings`);
  const times = k.map((r) => r.t);
  assert.notDeepEqual(
    times,
    [...times].sort((a, b) => a - b),
  );
  const after = (await get(`${BASE}Observation?date=gt2023-11-13T10:15:00%2B00:00&_format=json`)) as { entry?: unknown[] };
  assert.equal(after.entry, undefined);
});
