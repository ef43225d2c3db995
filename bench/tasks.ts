/**
 * Task-layer benchmark: node --import tsx bench/tasks.ts
 *
 * 1. Python json.loads (`pyJsonLoads`: JSON.parse fast path, and the exact port `pyJsonLoadsExact`) against
 *    `JSON.parse` on the grader's real reference bundles (the replica's
 *    `Observation?patient=&code=&_count=5000&_format=json` responses of all 300 v2 tasks): ratios.
 * 2. Official-grader throughput: all 300 v2 outputs of the u9401066 run (data/third-party/u9401066-medagent-copilot/) graded against
 *    the embedded replica;
 *    the part spent outside the FHIR transport (Python-semantics grading itself) per task.
 * 3. Generator throughput: every family over a 500-patient synthetic cohort (instances per second).
 */
import { readFileSync } from 'node:fs';
import { loadWorld } from '../src/worlds/index.js';
import { createFhirApp } from '../src/fhir/server.js';
import { inProcessTransport } from '../src/fhir/client.js';
import type { FhirTransport } from '../src/fhir/types.js';
import { Rng } from '../src/worlds/prng.js';
import { loadTaskSet } from '../src/tasks/loader.js';
import { FAMILIES, FAMILY_IDS } from '../src/tasks/registry.js';
import { labUrl } from '../src/tasks/refsol.js';
import { gradeOutput } from '../src/tasks/grade.js';
import { POST_ACCEPTED_REPLY } from '../src/tasks/common.js';
import { pyJsonLoads, pyJsonLoadsExact } from '../src/tasks/pysem.js';
import type { HistoryItem } from '../src/tasks/types.js';

const BASE = 'http://localhost:8080/fhir/';
const ms = (t0: number) => performance.now() - t0;

async function main(): Promise<void> {
  const replica = await loadWorld({ world: 'medagentbench' });
  const raw = inProcessTransport(createFhirApp(replica.store));
  const v2 = loadTaskSet('medagentbench-v2');

  // 1. json.loads port vs JSON.parse
  const CODES: Record<string, string> = { task4: 'MG', task5: 'MG', task6: 'GLU', task7: 'GLU', task9: 'K', task10: 'A1C' };
  const bodies: string[] = [];
  for (const t of v2.tasks) {
    const code = CODES[t.id.split('_')[0]];
    if (code) bodies.push((await raw({ method: 'GET', url: labUrl(BASE, t.eval_MRN, code) })).body);
  }
  const bytes = bodies.reduce((a, b) => a + b.length, 0);
  const rounds = 5;
  let t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const b of bodies) JSON.parse(b);
  const jsonMs = ms(t0) / rounds;
  t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const b of bodies) pyJsonLoads(b);
  const pyMs = ms(t0) / rounds;
  t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const b of bodies) pyJsonLoadsExact(b);
  const exactMs = ms(t0) / rounds;
  console.log(
    `json.loads: ${bodies.length} bundles, ${(bytes / 1e6).toFixed(1)} MB: JSON.parse ${jsonMs.toFixed(1)} ms, ` +
      `pyJsonLoads (JSON.parse fast path) ${pyMs.toFixed(1)} ms (${(pyMs / jsonMs).toFixed(2)}x), exact port ${exactMs.toFixed(1)} ms (${(exactMs / jsonMs).toFixed(2)}x)`,
  );

  // 2. grading the u9401066 run
  let fhirMs = 0;
  const fhir: FhirTransport = async (req) => {
    const t = performance.now();
    try {
      return await raw(req);
    } finally {
      fhirMs += ms(t);
    }
  };
  const results = (
    JSON.parse(readFileSync('data/third-party/u9401066-medagent-copilot/v2_agent_results.json', 'utf8')) as {
      results: Array<{ task_id: string; answer: string; post_history: HistoryItem[] }>;
    }
  ).results;
  const byId = new Map(results.map((r) => [r.task_id, r]));
  t0 = performance.now();
  let correct = 0;
  for (const [index, task] of v2.tasks.entries()) {
    const r = byId.get(task.id)!;
    const history: HistoryItem[] = [{ role: 'user', content: 'PROMPT' }];
    for (const h of r.post_history) if (h.role === 'agent') history.push({ role: 'agent', content: h.content }, { role: 'user', content: POST_ACCEPTED_REPLY });
    history.push({ role: 'agent', content: `FINISH(${r.answer})` });
    if ((await gradeOutput(task, { index, status: 'completed', result: r.answer, history }, { apiBase: BASE, fhir })).correct) correct++;
  }
  const gradeMs = ms(t0);
  console.log(
    `official grader: 300 tasks (${correct} correct) in ${gradeMs.toFixed(0)} ms; FHIR ${fhirMs.toFixed(0)} ms; grading logic ${((gradeMs - fhirMs) / 300).toFixed(2)} ms/task`,
  );

  // 3. generators
  const synth = await loadWorld({ world: 'synthetic', seed: 1, patients: 500 });
  const world = { apiBase: BASE, fhir: inProcessTransport(createFhirApp(synth.store)) };
  t0 = performance.now();
  let n = 0;
  for (const id of FAMILY_IDS) n += (await FAMILIES[id].generate(world, { rng: new Rng(`bench|${id}`), patients: synth.patientIds })).length;
  const genMs = ms(t0);
  console.log(`generators: ${n} instances over 500 synthetic patients × 10 families in ${genMs.toFixed(0)} ms (${((n / genMs) * 1000).toFixed(0)}/s)`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
