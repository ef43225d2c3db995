/**
 * What every clinical-suite family test shares: a planted world, playing an agent on a task (text or tools), grading,
 * editing one write of an expert's history, and the checks every family proves the same way (expert at 100 % in both
 * variants and the tools protocol, one mutation per checkpoint, FINISH([]) at zero, factory parity).
 */
import assert from 'node:assert/strict';
import { runEpisode } from '../../src/agent/loop.js';
import { directToolEnvironment, runToolsEpisode } from '../../src/agent/tools-loop.js';
import { finishEmptyAgent, PolicyAgent } from '../../src/agent/backends/scripted.js';
import { expertPolicy } from '../../src/agent/create.js';
import type { Agent } from '../../src/agent/types.js';
import { taskDialect } from '../../src/protocol/dialect.js';
import { formatAction, parseAction, POST_ACCEPTED, PUT_ACCEPTED } from '../../src/protocol/text.js';
import { type ClinicalWorld, openClinicalWorld } from '../../src/tasks/suite/splits.js';
import type { GeneratedTask, GradeResult, HistoryItem, SuiteFamily, TaskOutput } from '../../src/tasks/types.js';
import { rngFor } from '../../src/worlds/prng.js';

export const API = 'http://localhost:8080/fhir/';

export interface SuiteHarness {
  cw: ClinicalWorld;
  tasks: GeneratedTask[];
  play(agent: Agent, t: GeneratedTask, protocol?: 'text' | 'tools'): Promise<TaskOutput>;
  grade(t: GeneratedTask, o: TaskOutput): Promise<GradeResult>;
  /** GET a URL on the world (no session), parsed. */
  read(url: string): Promise<Record<string, unknown>>;
}

/** A world with the suite's plantings (`seed`, `patients`) and the family's generated tasks on it. */
export async function suiteHarness(family: SuiteFamily, opts: { seed?: number; patients?: number; maxRounds?: number } = {}): Promise<SuiteHarness> {
  const cw = await openClinicalWorld({ seed: opts.seed ?? 3, patients: opts.patients ?? 40 });
  const tasks = await family.generate(cw.access, { rng: rngFor(`suite-${family.id}-test`, 1), patients: cw.world.patientIds });
  const maxRounds = opts.maxRounds ?? 10;
  let n = 0;
  return {
    cw,
    tasks,
    async play(agent, t, protocol = 'text') {
      const s = await cw.access.openSession!(`ep-${t.task.id}-${++n}`);
      try {
        if (protocol === 'text')
          return (await runEpisode({ index: 0, task: t.task, agent, fhir: s.transport, apiBase: API, postMode: 'live', maxRounds })).output;
        const env = directToolEnvironment({ fhir: s.transport, dialect: taskDialect(t.task) });
        return (await runToolsEpisode({ index: 0, task: t.task, agent, env, apiBase: API, maxRounds })).output;
      } finally {
        await s.close();
      }
    },
    grade: (t, o) => family.grade(t.task, o, cw.access),
    async read(url) {
      return JSON.parse((await cw.access.fhir({ method: 'GET', url: url.startsWith('http') ? url : `${API}${url}` })).body) as Record<string, unknown>;
    },
  };
}

export const failed = (g: GradeResult): string[] => g.checks.filter((c) => !c.pass).map((c) => c.name);
export const expert: Agent = new PolicyAgent('expert', expertPolicy);

/** An agent playing the family's expert in one variant. */
export const variantAgent = (family: SuiteFamily, variant: string): Agent =>
  new PolicyAgent(variant, (task, history) => family.solve(task, history, { apiBase: API, variant }));

export type WriteMatch = (a: { kind: string; url: string; body: Record<string, unknown> }) => boolean;

/** The history with one accepted write's JSON body changed (its reply kept: the write was accepted). */
export function editWrite(h: HistoryItem[], match: WriteMatch, edit: (body: Record<string, unknown>) => void): HistoryItem[] {
  let hit = 0;
  const out = h.map((item) => {
    if (item.role !== 'agent') return item;
    const a = parseAction(item.content, { put: true });
    if (a.kind !== 'post' && a.kind !== 'put') return item;
    const body = JSON.parse(a.body) as Record<string, unknown>;
    if (!match({ kind: a.kind, url: a.url, body })) return item;
    hit++;
    edit(body);
    return { role: 'agent' as const, content: formatAction({ kind: a.kind, url: a.url, body: JSON.stringify(body) }) };
  });
  assert.equal(hit, 1, 'the mutation hits one write');
  return out;
}

/** The history with one accepted write inserted before FINISH. */
export function addWrite(h: HistoryItem[], kind: 'post' | 'put', url: string, body: unknown): HistoryItem[] {
  const out = h.slice(0, -1);
  out.push(
    { role: 'agent', content: formatAction({ kind, url: url.startsWith('http') ? url : `${API}${url}`, body: JSON.stringify(body) }) },
    { role: 'user', content: kind === 'put' ? PUT_ACCEPTED : POST_ACCEPTED },
  );
  out.push(h[h.length - 1]!);
  return out;
}

/** The history without the accepted writes that match (the agent did not make them). */
export function dropWrites(h: HistoryItem[], match: WriteMatch): HistoryItem[] {
  const out: HistoryItem[] = [];
  let dropped = 0;
  for (let i = 0; i < h.length; i++) {
    const item = h[i]!;
    if (item.role === 'agent') {
      const a = parseAction(item.content, { put: true });
      if ((a.kind === 'post' || a.kind === 'put') && match({ kind: a.kind, url: a.url, body: JSON.parse(a.body) as Record<string, unknown> })) {
        dropped++;
        i++; // its reply
        continue;
      }
    }
    out.push(item);
  }
  assert.ok(dropped > 0, 'the mutation drops a write');
  return out;
}

/** Expert at 100 % in every variant (text) and in the tools protocol, every checkpoint of its branch passed. */
export async function assertExpert(family: SuiteFamily, h: SuiteHarness, tasks: readonly GeneratedTask[] = h.tasks): Promise<void> {
  for (const t of tasks) {
    for (const variant of family.variants) {
      const g = await h.grade(t, await h.play(variantAgent(family, variant), t));
      assert.ok(g.correct, `${t.task.id} ${variant}: ${failed(g)} ${g.exception ?? ''}`);
      assert.equal(g.score, 1);
      assert.equal(g.branch, t.branch);
      assert.deepEqual(
        g.checks.map((c) => c.name),
        family.checkpoints[t.branch],
      );
    }
    const g = await h.grade(t, await h.play(expert, t, 'tools'));
    assert.ok(g.correct, `${t.task.id} tools: ${failed(g)} ${g.exception ?? ''}`);
  }
}

/**
 * One mutation per checkpoint of every branch: the mutated expert output fails exactly that checkpoint, with its
 * class, and prefix credit counts the checkpoints before it. `finished` is checked by dropping FINISH (then the
 * answer checkpoints named in `answerCheckpoints` fail too).
 */
export async function assertMutations(
  family: SuiteFamily,
  h: SuiteHarness,
  mutations: (t: GeneratedTask, out: TaskOutput) => Promise<Record<string, () => TaskOutput>> | Record<string, () => TaskOutput>,
  answerCheckpoints: readonly string[],
): Promise<void> {
  for (const branch of family.branches) {
    const t = h.tasks.find((x) => x.branch === branch);
    assert.ok(t, `no task of branch ${branch}`);
    const out = await h.play(expert, t);
    const names = family.checkpoints[branch]!;
    const m = await mutations(t, out);
    for (const name of names) {
      if (name === 'finished') {
        const g = await h.grade(t, { ...out, status: 'task limit reached', result: null, history: out.history!.slice(0, -1) });
        assert.deepEqual(failed(g), ['finished', ...names.filter((n) => answerCheckpoints.includes(n))], branch);
        assert.equal(g.failureClass, 'budget');
        assert.equal(g.score, 0);
        continue;
      }
      const mutate = m[name];
      assert.ok(mutate, `${branch}: no mutation for ${name}`);
      const g = await h.grade(t, mutate());
      assert.deepEqual(failed(g), [name], `${branch}: mutating ${name}`);
      assert.equal(g.score, (names.indexOf(name) - 1) / (names.length - 1), `${branch}: score after mutating ${name}`);
      assert.equal(g.failureClass, g.checks.find((c) => c.name === name)!.class);
      assert.equal(g.correct, false);
    }
  }
}

/** FINISH([]) fails every task with score 0. */
export async function assertFinishEmptyFails(h: SuiteHarness): Promise<void> {
  for (const t of h.tasks) {
    const g = await h.grade(t, await h.play(finishEmptyAgent(), t));
    assert.equal(g.correct, false, t.task.id);
    assert.equal(g.score, 0, `${t.task.id}: partial credit for doing nothing`);
  }
}

/** The expert's conversation passes the factory's harness checks in the family's dialect, one task per branch. */
export async function assertFactoryParity(family: SuiteFamily, h: SuiteHarness): Promise<void> {
  const { checkParity } = await import('../../src/factory/parity.js');
  for (const branch of family.branches) {
    const t = h.tasks.find((x) => x.branch === branch)!;
    const out = await h.play(expert, t);
    const messages = out.history!.map((x) => ({ role: x.role === 'agent' ? ('assistant' as const) : ('user' as const), content: x.content }));
    assert.deepEqual(await checkParity(messages, t.task), [], branch);
  }
}

/** Tasks per branch (generator coverage). */
export function byBranch(tasks: readonly GeneratedTask[]): Map<string, GeneratedTask[]> {
  const m = new Map<string, GeneratedTask[]>();
  for (const t of tasks) m.set(t.branch, [...(m.get(t.branch) ?? []), t]);
  return m;
}

/**
 * Every degenerate policy of `ehrgym audit` (src/agent/backends/degenerate.ts) on the family's generated tasks passes
 * at most `maxRate` of them (the suite's goal: 5 %). Returns each policy's rate.
 */
export async function assertDegenerate(family: SuiteFamily, h: SuiteHarness, maxRate = 0.05): Promise<Record<string, number>> {
  const { createAgent } = await import('../../src/agent/create.js');
  const { DEGENERATE_POLICIES, modalAnswerAgent, modalAnswers } = await import('../../src/agent/backends/degenerate.js');
  const rates: Record<string, number> = {};
  // modal-answer: the most frequent of the expert's answers over these tasks
  const right: Array<{ id: string; result: string }> = [];
  for (const t of h.tasks) {
    const o = await h.play(expert, t);
    if (typeof o.result === 'string') right.push({ id: t.task.id, result: o.result });
  }
  const modal = modalAnswerAgent(modalAnswers(right));
  for (const policy of DEGENERATE_POLICIES) {
    let passed = 0;
    for (const t of h.tasks) {
      const g = await h.grade(t, await h.play(policy === 'modal-answer' ? modal : createAgent(policy), t));
      if (g.correct) passed++;
    }
    rates[policy] = passed / h.tasks.length;
    assert.ok(rates[policy] <= maxRate, `${family.id}: ${policy} passes ${passed} of ${h.tasks.length}`);
  }
  return rates;
}
