/**
 * World boot benchmark.
 *
 *   node --import tsx --expose-gc bench/worlds.ts
 *
 * 1. Full MedAgentBench replica through `loadWorld()` (columnar generation + lazy store rows): boot time, heap.
 * 2. Same-run baseline on a 10-patient cohort slice: lazy (`addLazy`, JSON built on demand) versus eager (every
 *    resource materialised up front and added with `add()`, i.e. what a JSON-file world would cost), as a ratio.
 * 3. Synthetic cohort of 100 patients.
 * Goals: replica boot ≤ 3 s, heap ≤ 1.5 GB.
 */
import { FhirStore } from '../src/fhir/store.js';
import { loadWorld } from '../src/worlds/index.js';
import { generateClinical } from '../src/worlds/clinical.js';
import { replicaAnchors, replicaPatients, MEDAGENTBENCH_FIRST_ID, MEDAGENTBENCH_GENERATOR_VERSION } from '../src/worlds/medagentbench.js';

const gc = (globalThis as { gc?: () => void }).gc;
function heapMb(): number {
  gc?.();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 1e6;
}
function ms(t0: number): number {
  return performance.now() - t0;
}

const h0 = heapMb();
let t0 = performance.now();
const world = await loadWorld({ world: 'medagentbench' });
const bootMs = ms(t0);
const heap = heapMb() - h0;
console.log(
  `replica boot: ${bootMs.toFixed(0)} ms, ${world.total.toLocaleString('en-US')} resources, heap + array buffers +${heap.toFixed(0)} MB (goal ≤ 3000 ms, ≤ 1500 MB)`,
);

// Lazy versus eager on the same 10 patients, same run.
const patients = replicaPatients().slice(0, 10);
const anchors = replicaAnchors();
const slice = () =>
  generateClinical(
    patients.map((p) => ({ id: p.id!, birthDate: p.birthDate, gender: p.gender, anchors: anchors.patients[p.id!] })),
    { streamPrefix: MEDAGENTBENCH_GENERATOR_VERSION, firstId: MEDAGENTBENCH_FIRST_ID, lastUpdatedBaseMs: Date.parse('2024-12-30T19:10:12.000+00:00') },
  );
const runs = 3;
let lazyBest = Infinity;
let eagerBest = Infinity;
let lazyHeap = 0;
let eagerHeap = 0;
let rows = 0;
const keep: unknown[] = [];
for (let r = 0; r < runs; r++) {
  let base = r === 0 ? heapMb() : 0;
  t0 = performance.now();
  const lazy = new FhirStore();
  const h = slice();
  h.load(lazy);
  lazy.freeze();
  lazyBest = Math.min(lazyBest, ms(t0));
  keep.push(lazy, h);
  if (r === 0) lazyHeap = heapMb() - base; // memory from the first (clean) run only
  rows = h.size;
  if (r === 0) base = heapMb();
  t0 = performance.now();
  const eager = new FhirStore();
  const h2 = slice();
  for (let i = 0; i < h2.size; i++) eager.add(JSON.parse(JSON.stringify(h2.materialize(i))));
  eager.freeze();
  eagerBest = Math.min(eagerBest, ms(t0));
  keep.push(eager);
  if (r === 0) eagerHeap = heapMb() - base;
  keep.length = 0;
  if (lazy.size !== eager.size) throw new Error('lazy and eager stores differ in size');
}
console.log(
  `10-patient slice (${rows.toLocaleString('en-US')} rows, best of ${runs}; memory from the first run): lazy ${lazyBest.toFixed(0)} ms / +${lazyHeap.toFixed(0)} MB, ` +
    `eager ${eagerBest.toFixed(0)} ms / +${eagerHeap.toFixed(0)} MB → lazy is ${(eagerBest / lazyBest).toFixed(1)}× faster, ${(eagerHeap / Math.max(1, lazyHeap)).toFixed(1)}× smaller`,
);

t0 = performance.now();
const syn = await loadWorld({ world: 'synthetic', seed: 1, patients: 100 });
console.log(`synthetic 100 patients: ${ms(t0).toFixed(0)} ms, ${syn.total.toLocaleString('en-US')} resources`);
