/**
 * Importing the Synthea samples (R4 transaction bundles and bulk NDJSON): counts per type, urn:uuid → server ids with
 * rewritten references, dangling / conditional references reported, billing skip, both BP codes, deceased patients,
 * long floats, malformed files named with file and line, strict mode, importing next to the replica.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FhirStore } from '../src/fhir/store.js';
import { importFiles, ImportError } from '../src/worlds/import.js';
import { loadWorld } from '../src/worlds/index.js';
import type { Resource } from '../src/fhir/types.js';

const BUNDLES = 'test/fixtures/fhir-samples/synthea-r4-transaction-bundles';
const NDJSON = 'test/fixtures/fhir-samples/synthea-bulk-ndjson-10-patients';

/** Expected per-type counts, read independently from the files. */
function expectedCounts(): { counts: Record<string, number>; encounterRefs: number; practitionerRefs: number } {
  const counts: Record<string, number> = {};
  for (const f of readdirSync(BUNDLES).filter((x) => x.endsWith('.json'))) {
    for (const e of JSON.parse(readFileSync(join(BUNDLES, f), 'utf8')).entry) counts[e.resource.resourceType] = (counts[e.resource.resourceType] ?? 0) + 1;
  }
  let encounterRefs = 0;
  let practitionerRefs = 0;
  for (const f of readdirSync(NDJSON).filter((x) => x.endsWith('.ndjson'))) {
    const text = readFileSync(join(NDJSON, f), 'utf8');
    for (const line of text.split('\n').filter((l) => l.trim())) {
      const r = JSON.parse(line);
      counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
      encounterRefs += (line.match(/"reference":"Encounter\//g) ?? []).length;
      practitionerRefs += (line.match(/"reference":"Practitioner\?identifier=/g) ?? []).length;
    }
  }
  return { counts, encounterRefs, practitionerRefs };
}

function allRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) allRefs(v, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string') out.push(v);
      else allRefs(v, out);
    }
  }
  return out;
}

const store = new FhirStore();
const report = importFiles(store, [BUNDLES, NDJSON], { firstId: 1 });
store.freeze();
const exp = expectedCounts();

test('counts per type match the files; 4 bundles + 4 ndjson files', () => {
  assert.deepEqual(report.counts, exp.counts);
  assert.equal(report.files.filter((f) => f.kind === 'bundle').length, 4);
  assert.equal(report.files.filter((f) => f.kind === 'ndjson').length, 4);
  for (const [t, n] of Object.entries(exp.counts)) assert.equal(store.count(t), n, t);
});

test('urn:uuid fullUrls get server ids and every bundle reference is rewritten to them', () => {
  const bundleTypes = Object.keys(
    JSON.parse(readFileSync(join(BUNDLES, readdirSync(BUNDLES).find((f) => f.startsWith('Lupe'))!), 'utf8')).entry.reduce(
      (a: Record<string, 1>, e: { resource: Resource }) => ((a[e.resource.resourceType] = 1), a),
      {},
    ),
  );
  let checked = 0;
  for (const t of bundleTypes) {
    for (const r of store.searchResources(t, [])) {
      if (!/^\d+$/.test(r.id!)) continue; // NDJSON rows keep their UUID ids
      for (const ref of allRefs(r)) {
        if (ref.startsWith('#')) continue; // contained resource
        assert.ok(!ref.startsWith('urn:uuid:'), `${t}/${r.id} still references ${ref}`);
        const [rt, rid] = ref.split('/');
        assert.ok(store.read(rt!, rid!), `${t}/${r.id} → ${ref} does not resolve`);
        checked++;
      }
    }
  }
  assert.ok(checked > 500, `${checked} references checked`);
  assert.equal(report.idsAssigned, Object.entries(exp.counts).reduce((a, [t, n]) => a + n, 0) - 1745 - 555 - 13 - 11);
  // Lupe Little's observations point at her patient, by the new numeric id.
  const lupe = store.searchResources('Patient', 'family=Little&given=Lupe');
  assert.equal(lupe.length, 1);
  assert.match(lupe[0]!.id!, /^\d+$/);
  const obs = store.searchResources('Observation', `patient=${lupe[0]!.id}`);
  assert.ok(obs.length > 50, `${obs.length} observations for Lupe`);
});

test('dangling Encounter and conditional Practitioner references are reported, not fatal', () => {
  assert.equal(report.unresolved.byTarget.Encounter, exp.encounterRefs);
  assert.equal(report.unresolved.byTarget['Practitioner?identifier'], exp.practitionerRefs);
  assert.equal(report.unresolved.dangling, exp.encounterRefs);
  assert.equal(report.unresolved.conditional, exp.practitionerRefs);
  assert.ok(report.unresolved.examples.some((e) => e.reason === 'conditional' && e.reference.startsWith('Practitioner?identifier=')));
  const ex = report.unresolved.examples.find((e) => e.reason === 'dangling')!;
  assert.match(ex.file, /\.ndjson$/);
  assert.equal(typeof ex.line, 'number');
  // Kept verbatim on the resource.
  const [t, id] = ex.resource.split('/');
  assert.ok(allRefs(store.read(t!, id!)).includes(ex.reference));
});

test('deceased patient, BP 55284-4 with components, long floats kept as numbers', () => {
  assert.ok(report.deceasedPatients >= 1);
  const garrett = store.searchResources('Patient', 'family=Thompson&given=Garrett')[0]!;
  assert.match(garrett.deceasedDateTime, /^19/);
  const bp = store.searchResources('Observation', 'code=55284-4');
  assert.ok(bp.length > 0);
  assert.deepEqual(bp[0]!.component.map((c: Resource) => c.code.coding[0].code).sort(), ['8462-4', '8480-6']);
  const raw = readFileSync(join(BUNDLES, readdirSync(BUNDLES).find((f) => f.startsWith('Lupe'))!), 'utf8');
  const m = /"value": ?(\d+\.\d{12,})/.exec(raw)!;
  const hit = store.searchResources('Observation', []).find((o) => o.valueQuantity?.value === Number(m[1]));
  assert.ok(hit, `long float ${m[1]} preserved`);
});

test('85354-9 panel and a collection bundle; --skip-billing drops Claim/EOB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-import-'));
  const f = join(dir, 'panel.json');
  writeFileSync(
    f,
    JSON.stringify({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        {
          fullUrl: 'urn:uuid:p1',
          resource: { resourceType: 'Patient', name: [{ family: 'Quill', given: ['Avery'] }], gender: 'female', birthDate: '1961-04-22' },
        },
        {
          fullUrl: 'urn:uuid:o1',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
            subject: { reference: 'urn:uuid:p1' },
            effectiveDateTime: '2023-11-13T08:00:00+00:00',
            component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 128, unit: 'mmHg' } }],
          },
        },
      ],
    }),
  );
  const s = new FhirStore();
  const r = importFiles(s, [f, BUNDLES], { firstId: 100, skipBilling: true });
  assert.equal(r.counts.Claim, undefined);
  assert.equal(r.skipped.Claim, exp.counts.Claim);
  assert.equal(r.skipped.ExplanationOfBenefit, exp.counts.ExplanationOfBenefit);
  assert.equal(s.count('Claim'), 0);
  const panel = s.searchResources('Observation', 'code=85354-9');
  assert.equal(panel.length, 1);
  assert.equal(panel[0]!.subject.reference, 'Patient/100');
  assert.equal(s.read('Patient', '100')!.name[0].family, 'Quill');
});

test('malformed input fails with the file and line; nothing added', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-import-'));
  const bad = join(dir, 'Observation.000.ndjson');
  writeFileSync(
    bad,
    '{"resourceType":"Observation","id":"a","status":"final"}\n{"resourceType":"Observation","id":"b"}\n{"resourceType": "Observation", "id": \n',
  );
  const s = new FhirStore();
  assert.throws(
    () => importFiles(s, [bad]),
    (e: unknown) => e instanceof ImportError && e.message.startsWith(`${bad}:3:`) && /malformed JSON/.test(e.message),
  );
  assert.equal(s.size, 0);
  const unknown = join(dir, 'x.ndjson');
  writeFileSync(unknown, '{"resourceType":"Banana","id":"1"}\n');
  assert.throws(() => importFiles(s, [unknown]), /x\.ndjson:1: unknown FHIR R4 resource type "Banana"/);
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{\n "resourceType": "Bundle",\n "entry": [ }\n');
  assert.throws(
    () => importFiles(s, [broken]),
    (e: unknown) => e instanceof ImportError && e.message.includes('broken.json:3:'),
  );
  assert.throws(() => importFiles(s, [join(dir, 'missing.json')]), /missing\.json: no such file or directory/);
  assert.equal(s.size, 0);
});

test('strict mode rejects unresolved references; imports sit next to the replica without id clashes', async () => {
  await assert.rejects(loadWorld({ world: 'empty', imports: [NDJSON], strict: true }), /strict import: \d+ unresolved references/);
  const dir = mkdtempSync(join(tmpdir(), 'ehrgym-import-'));
  const f = join(dir, 'extra.json');
  writeFileSync(
    f,
    JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:x1',
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'BP' },
            valueString: '120/80 mmHg',
            subject: { reference: 'Patient/S6534835' },
            effectiveDateTime: '2023-11-12T08:00:00+00:00',
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    }),
  );
  const w = await loadWorld({ imports: [f], strict: true });
  assert.equal(w.importReport!.unresolved.total, 0);
  const id = String(w.importReport!.lastId);
  assert.ok(Number(id) > 500_000, id);
  const o = w.store.read('Observation', id)!;
  assert.equal(o.valueString, '120/80 mmHg');
  assert.equal(w.counts.Observation, w.store.count('Observation'));
});

test('re-basing dates to NOW keeps intervals and formats; nothing ends up after NOW; lowercase display kept', () => {
  const lupe = join(BUNDLES, readdirSync(BUNDLES).find((f) => f.startsWith('Lupe'))!);
  const plain = new FhirStore();
  importFiles(plain, [lupe], { firstId: 1 });
  const s = new FhirStore();
  const r = importFiles(s, [lupe], { firstId: 1, rebaseTo: '2023-11-13T10:15:00+00:00' });
  assert.ok(r.rebasedDays > 1000, `${r.rebasedDays} days`);
  const before = plain.searchResources('Observation', []);
  const after = s.searchResources('Observation', []);
  assert.equal(after.length, before.length);
  const NOW = Date.parse('2023-11-13T10:15:00+00:00');
  for (let i = 0; i < after.length; i++) {
    const a = after[i]!;
    const b = before[i]!;
    assert.equal(Date.parse(a.effectiveDateTime) - Date.parse(b.effectiveDateTime), r.rebasedDays * 86_400_000);
    assert.equal(a.effectiveDateTime.slice(10), b.effectiveDateTime.slice(10), 'time of day and offset kept');
    assert.ok(Date.parse(a.issued) <= NOW);
  }
  // The latest date anywhere in the clinical (non-billing) resources lands within the 24 h before NOW.
  let latest = -Infinity;
  const visit = (n: unknown, key = ''): void => {
    if (Array.isArray(n)) n.forEach((x) => visit(x, key));
    else if (n && typeof n === 'object')
      for (const [k, v] of Object.entries(n)) {
        if (k !== 'meta') visit(v, k);
      }
    else if (typeof n === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(n) && key !== 'div') latest = Math.max(latest, Date.parse(n));
  };
  for (const t of s.types()) if (t !== 'Claim' && t !== 'ExplanationOfBenefit') for (const res of s.searchResources(t, [])) visit(res);
  assert.ok(latest <= NOW && latest > NOW - 86_400_000, new Date(latest).toISOString());
  // The last observation in the original file is 2019-05-01T04:23:40+00:00.
  assert.ok(before.some((o) => o.effectiveDateTime === '2019-05-01T04:23:40+00:00'));
  const p0 = plain.searchResources('Patient', [])[0]!;
  const p1 = s.searchResources('Patient', [])[0]!;
  assert.equal(Date.parse(p1.birthDate) - Date.parse(p0.birthDate), r.rebasedDays * 86_400_000);
  assert.deepEqual(p1.meta, p0.meta);
  const vit = after.find((o) => o.category?.[0]?.coding?.[0]?.code === 'vital-signs')!;
  assert.equal(vit.category[0].coding[0].display, 'vital-signs');
  assert.throws(() => importFiles(new FhirStore(), [lupe], { rebaseTo: 'yesterday' }), /rebaseTo is not a date-time/);
});

test('MedAgentBench compat codes (opt-in): local K/GLU/A1C/BP codings, rounded values, flowsheet BP string', () => {
  const fabian = join(BUNDLES, readdirSync(BUNDLES).find((f) => f.startsWith('Fabian'))!);
  const verbatim = new FhirStore();
  importFiles(verbatim, [fabian], { firstId: 1 });
  const pid = verbatim.searchResources('Patient', [])[0]!.id!;
  assert.equal(verbatim.searchResources('Observation', `patient=${pid}&code=A1C`).length, 0);
  const s = new FhirStore();
  const r = importFiles(s, [fabian], { firstId: 1, medagentbenchCodes: true });
  assert.ok(r.localCodesAdded > 0);
  const a1c = s.searchResources('Observation', `patient=${pid}&code=A1C`);
  const a1cLoinc = verbatim.searchResources('Observation', `patient=${pid}&code=4548-4`);
  assert.ok(a1c.length > 0);
  assert.equal(a1c.length, a1cLoinc.length);
  for (let i = 0; i < a1c.length; i++) {
    assert.equal(a1c[i]!.valueQuantity.value, Math.round(a1cLoinc[i]!.valueQuantity.value * 10) / 10);
    assert.deepEqual(
      a1c[i]!.code.coding.map((c: { code: string }) => c.code),
      ['4548-4', 'A1C'],
    );
  }
  assert.ok(s.searchResources('Observation', `patient=${pid}&code=K`).length > 0);
  assert.ok(s.searchResources('Observation', `patient=${pid}&code=GLU`).length > 0);
  const bp = s.searchResources('Observation', `patient=${pid}&code=BP`);
  assert.ok(bp.length > 0);
  for (const o of bp) assert.match(o.valueString, /^\d{2,3}\/\d{2,3} mmHg$/);
});
