/**
 * The generators' narrow lab reads (`latestLab`: `_sort=-date&_count=1`; `labsLast24h`: `date=ge` NOW − 24 h) give the
 * same scan results as the graders' full-history read (`Observation?patient=&code=&_count=5000`), for every patient
 * and lab code of a synthetic cohort (planted boundary times included) and of the MedAgentBench replica (real data).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadWorld, type World } from '../src/worlds/index.js';
import { createFhirApp } from '../src/fhir/server.js';
import { inProcessTransport } from '../src/fhir/client.js';
import { labsLast24h, latestLab, latestLabLast24h } from '../src/tasks/common.js';
import { CUTOFF_24H, getJsonData, labUrl, scanLatest, scanMean, type LatestScan } from '../src/tasks/refsol.js';
import { pyEquals } from '../src/tasks/pysem.js';
import type { WorldAccess } from '../src/tasks/types.js';
import { BASE } from './helpers/tasks-fake.js';

const CODES = ['MG', 'GLU', 'K', 'A1C'];
let synth: World;
let replica: World;

before(async () => {
  synth = await loadWorld({ world: 'synthetic', seed: 7, patients: 60 });
  replica = await loadWorld({ world: 'medagentbench' });
});

const same = (a: LatestScan, b: LatestScan) =>
  pyEquals([a.value], [b.value]) && a.time === b.time && (a.meas === null ? b.meas === null : b.meas !== null && pyEquals(a.meas, b.meas));

async function compare(w: World): Promise<{ problems: string[]; present: number; windowed: number }> {
  const world: WorldAccess = { apiBase: BASE, fhir: inProcessTransport(createFhirApp(w.store)) };
  const problems: string[] = [];
  let present = 0;
  let windowed = 0;
  for (const mrn of w.patientIds) {
    for (const code of CODES) {
      const full = await getJsonData(world.fhir, labUrl(BASE, mrn, code));
      const latest = scanLatest(full);
      const latest24 = scanLatest(full, CUTOFF_24H);
      const mean24 = scanMean(full, CUTOFF_24H);
      if (latest.value !== null) present++;
      if (mean24.count > 0) windowed++;
      const a = await latestLab(world, mrn, code);
      if (!same(a, latest)) problems.push(`${mrn} ${code} latest: ${JSON.stringify([a.value, a.time])} vs ${JSON.stringify([latest.value, latest.time])}`);
      const b = await latestLabLast24h(world, mrn, code);
      if (!same(b, latest24))
        problems.push(`${mrn} ${code} latest 24 h: ${JSON.stringify([b.value, b.time])} vs ${JSON.stringify([latest24.value, latest24.time])}`);
      const m = scanMean(await labsLast24h(world, mrn, code), CUTOFF_24H);
      if (m.count !== mean24.count || !pyEquals([m.mean], [mean24.mean]) || !pyEquals(m.values, mean24.values)) {
        problems.push(`${mrn} ${code} mean 24 h: ${JSON.stringify([m.mean, m.count])} vs ${JSON.stringify([mean24.mean, mean24.count])}`);
      }
    }
  }
  return { problems, present, windowed };
}

test('synthetic cohort: narrow reads = full-history scans for every patient and code', async () => {
  const r = await compare(synth);
  assert.deepEqual(r.problems, []);
  assert.ok(r.present > 100 && r.windowed > 20, `present ${r.present}, windowed ${r.windowed}`);
});

test('MedAgentBench replica: narrow reads = full-history scans for every patient and code', async () => {
  const r = await compare(replica);
  assert.deepEqual(r.problems, []);
  assert.ok(r.present > 50, `present ${r.present}`);
});
