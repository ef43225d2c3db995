/**
 * Factory worker thread: runs expert episodes and their grading (the Python-semantics JSON parsing of responses is
 * the CPU-heavy part) against the main thread's loopback FHIR server over HTTP, so a second core works while the main
 * thread serves requests, runs the generators, checks parity and assembles rows. Jobs and results are plain JSON.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { httpTransport } from '../fhir/client.js';
import { runEpisode } from '../agent/loop.js';
import { directToolEnvironment, runToolsEpisode } from '../agent/tools-loop.js';
import { PolicyAgent } from '../agent/backends/scripted.js';
import { FAMILIES, isFamilyId } from '../tasks/registry.js';
import { taskDialect } from '../protocol/dialect.js';
import { retrying } from './retry.js';
import type { WorkerJob, WorkerResult } from './workers.js';

const { serverUrl } = workerData as { serverUrl: string };
const base = retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: serverUrl } }));
const access = {
  apiBase: OFFICIAL_API_BASE,
  fhir: base,
  // end-state grading (clinical suite): a scratch session on the factory's server, dropped on close
  openSession: async (name: string) => ({
    transport: retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: serverUrl }, session: name })),
    close: async () => {
      await fetch(`${serverUrl}_session/${encodeURIComponent(name)}`, { method: 'DELETE' }).catch(() => undefined);
    },
  }),
};

async function handle(job: WorkerJob): Promise<WorkerResult> {
  if (!isFamilyId(job.family)) throw new Error(`unknown family ${job.family}`);
  const family = FAMILIES[job.family];
  const agent = new PolicyAgent(`expert:${family.id}:${job.variant}`, (task, history) =>
    family.solve(task, history, { apiBase: OFFICIAL_API_BASE, variant: job.variant }),
  );
  const fhir = retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: serverUrl }, session: job.session }));
  const res =
    job.protocol === 'tools'
      ? await runToolsEpisode({
          index: job.index,
          task: job.task,
          agent,
          env: directToolEnvironment({ fhir, postMode: 'live', dialect: taskDialect(job.task) }),
          apiBase: OFFICIAL_API_BASE,
        })
      : await runEpisode({ index: job.index, task: job.task, agent, fhir, apiBase: OFFICIAL_API_BASE });
  let grade: Extract<WorkerResult, { kind: 'solve' }>['grade'] = null;
  if (res.agentError === undefined && res.output.status === 'completed') {
    const g = await family.grade(job.task, res.output, access);
    grade = {
      correct: g.correct,
      checks: g.checks.map((c) => ({ name: c.name, pass: c.pass })),
      ...(g.exception !== undefined ? { exception: g.exception } : {}),
    };
  }
  return { id: job.id, kind: 'solve', output: res.output, ...(res.agentError !== undefined ? { agentError: res.agentError } : {}), grade };
}

parentPort!.on('message', (job: WorkerJob) => {
  handle(job).then(
    (r) => parentPort!.postMessage(r),
    (e: unknown) => parentPort!.postMessage({ id: job.id, kind: 'error', error: e instanceof Error ? e.message : String(e) } satisfies WorkerResult),
  );
});
