/** Scores, behaviour statistics and paired comparisons computed from loaded runs. */
import { BEHAVIOUR_IDS, detectAll } from './behaviours.js';
import { assertSameTasks } from './load.js';
import { familyName } from './families.js';
import { mcnemarExact, wilson } from './stats.js';
import { MODEL_EMPTY_REPLY, MODEL_TOOL_TEXT } from '../eval/score.js';
import { lastIndexOf, toolTranscript, toolUsage } from './transcript.js';
import type {
  CheckpointSummary,
  AssistantTurn,
  BehaviourStats,
  CaseSide,
  CaseStudy,
  Comparison,
  FamilyScore,
  Finding,
  LoadedRun,
  RunAnalysis,
  RunScores,
  RunTask,
  StatusBreakdown,
} from './types.js';

/** task2 < task10: compare by the number after `task`, then by name. */
export function compareFamilies(a: string, b: string): number {
  const na = /^task(\d+)$/.exec(a)?.[1];
  const nb = /^task(\d+)$/.exec(b)?.[1];
  if (na && nb) return Number(na) - Number(nb);
  if (na) return -1;
  if (nb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const rate = (c: number, n: number): number => (n === 0 ? 0 : c / n);

export function statusBreakdown(tasks: RunTask[]): StatusBreakdown {
  const s: StatusBreakdown = { completed: 0, invalidAction: 0, roundLimit: 0, contextLimit: 0, error: 0, raw: {} };
  for (const t of tasks) {
    const st = t.graded.status;
    s.raw[st] = (s.raw[st] ?? 0) + 1;
    if (st === 'completed') s.completed++;
    else if (st === 'agent invalid action') s.invalidAction++;
    else if (st === 'task limit reached') s.roundLimit++;
    else if (st === 'agent context limit') s.contextLimit++;
    else if (st !== MODEL_EMPTY_REPLY && st !== MODEL_TOOL_TEXT) s.error++; // those two: rows of their own (raw)
  }
  s.raw = Object.fromEntries(Object.entries(s.raw).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return s;
}

export function scoreRun(run: LoadedRun): RunScores {
  const tasks = run.tasks;
  const total = tasks.length;
  const correct = tasks.filter((t) => t.graded.correct).length;
  const fam = new Map<string, { correct: number; total: number }>();
  const q = { correct: 0, total: 0 };
  const a = { correct: 0, total: 0 };
  for (const t of tasks) {
    const f = fam.get(t.graded.family) ?? { correct: 0, total: 0 };
    f.total++;
    if (t.graded.correct) f.correct++;
    fam.set(t.graded.family, f);
    const bucket = t.info.kind === 'query' ? q : t.info.kind === 'action' ? a : undefined;
    if (bucket) {
      bucket.total++;
      if (t.graded.correct) bucket.correct++;
    }
  }
  const perFamily: FamilyScore[] = [...fam.entries()]
    .sort(([x], [y]) => compareFamilies(x, y))
    .map(([family, v]) => {
      const name = familyName(family);
      return { family, ...(name ? { name } : {}), correct: v.correct, total: v.total, sr: rate(v.correct, v.total), ci95: wilson(v.correct, v.total) };
    });
  const sum = (f: (t: RunTask) => number): number => tasks.reduce((acc, t) => acc + f(t), 0);
  return {
    total,
    correct,
    successRate: rate(correct, total),
    ci95: wilson(correct, total),
    query: { ...q, sr: rate(q.correct, q.total) },
    action: { ...a, sr: rate(a.correct, a.total) },
    perFamily,
    status: statusBreakdown(tasks),
    avgRounds: rate(
      sum((t) => t.graded.rounds ?? 0),
      total,
    ),
    avgPromptTokens: rate(
      sum((t) => t.graded.promptTokens ?? 0),
      total,
    ),
    avgCompletionTokens: rate(
      sum((t) => t.graded.completionTokens ?? 0),
      total,
    ),
  };
}

/** Findings of every task of a run, keyed by task id. */
export function runFindings(run: LoadedRun): Map<string, Finding[]> {
  const out = new Map<string, Finding[]>();
  for (const t of run.tasks) out.set(t.graded.id, detectAll(t.info, t.output, t.graded.grade));
  return out;
}

export function behaviourStats(run: LoadedRun, findings: Map<string, Finding[]>, examplesPer = 3): BehaviourStats[] {
  return BEHAVIOUR_IDS.map((id) => {
    const s: BehaviourStats = { behaviour: id, tasks: 0, occurrences: 0, perFamily: {}, examples: [] };
    for (const t of run.tasks) {
      const hits = (findings.get(t.graded.id) ?? []).filter((f) => f.behaviour === id);
      if (hits.length === 0) continue;
      s.tasks++;
      s.occurrences += hits.length;
      s.perFamily[t.graded.family] = (s.perFamily[t.graded.family] ?? 0) + 1;
      if (s.examples.length < examplesPer) s.examples.push({ taskId: t.graded.id, turn: hits[0]!.turn, evidence: hits[0]!.evidence });
    }
    s.perFamily = Object.fromEntries(Object.entries(s.perFamily).sort(([a], [b]) => compareFamilies(a, b)));
    return s;
  });
}

export function analyzeRun(run: LoadedRun): RunAnalysis {
  const findings = runFindings(run);
  const m = run.summary.manifest;
  return {
    label: run.label,
    dir: run.dir,
    agent: m?.agent?.name ?? 'unknown',
    taskSet: m?.taskSet?.name ?? 'unknown',
    protocol: run.protocol,
    scores: scoreRun(run),
    ...(run.summary.trialStats
      ? {
          trialStats: run.summary.trialStats,
          inconsistent: run.tasks
            .filter((t) => t.trials && t.trials.some((x) => x.correct !== t.trials![0].correct))
            .map((t) => ({ id: t.graded.id, outcomes: t.trials!.map((x) => (x.correct ? '✓' : '✗')).join('') })),
        }
      : {}),
    ...(run.protocol !== 'text'
      ? {
          tools: toolUsage(
            run.tasks.map((t) => t.output),
            m?.recoverToolText === true,
          ),
        }
      : {}),
    behaviours: behaviourStats(run, findings),
    findings: Object.fromEntries([...findings.entries()].filter(([, f]) => f.length > 0)),
    ...checkpointsOf(run),
  };
}

/**
 * Index of the first history item that differs between two histories (the shorter length if one is a prefix).
 * `from`: where to start comparing (1 skips the prompts, which differ between protocols).
 */
export function firstDivergence(a: RunTask['output']['history'], b: RunTask['output']['history'], from = 0): number {
  const x = a ?? [];
  const y = b ?? [];
  const n = Math.min(x.length, y.length);
  for (let i = Math.min(from, n); i < n; i++) if (x[i]!.role !== y[i]!.role || x[i]!.content !== y[i]!.content) return i;
  return n;
}

/** A tools / mcp episode's replies that made the history items from `d` on (all of them when unaligned). */
function turnsFrom(output: RunTask['output'], d: number): AssistantTurn[] | undefined {
  const tr = toolTranscript(output);
  if (!tr) return undefined;
  return tr.aligned ? tr.turns.filter((t) => lastIndexOf(t) >= d) : tr.turns;
}

function caseStudy(base: RunTask, other: RunTask, change: 'fixed' | 'broken', samePrompts: boolean): CaseStudy {
  const d = firstDivergence(base.output.history, other.output.history, samePrompts ? 0 : 1);
  const side = (t: RunTask): CaseSide => {
    const turns = turnsFrom(t.output, d);
    return {
      status: t.graded.status,
      correct: t.graded.correct,
      items: (t.output.history ?? []).slice(d).map((h, k) => ({ index: d + k, role: h.role, content: h.content })),
      ...(turns ? { turns } : {}),
    };
  };
  const instruction = base.info.instruction ?? other.info.instruction;
  return {
    taskId: base.graded.id,
    family: base.graded.family,
    change,
    ...(instruction !== undefined ? { instruction } : {}),
    divergence: d,
    base: side(base),
    other: side(other),
  };
}

/** Paired comparison of `other` against `base` (same task ids required). */
export function compareRuns(base: LoadedRun, other: LoadedRun, a: RunAnalysis, b: RunAnalysis, maxCases = 6): Comparison {
  assertSameTasks([base, other]);
  const otherById = new Map(other.tasks.map((t) => [t.graded.id, t]));
  const pairs = base.tasks.map((t) => [t, otherById.get(t.graded.id)!] as const);
  const mc = mcnemarExact(
    pairs.map(([x]) => x.graded.correct),
    pairs.map(([, y]) => y.graded.correct),
  );
  const fixed = pairs.filter(([x, y]) => !x.graded.correct && y.graded.correct).map(([x]) => x.graded.id);
  const broken = pairs.filter(([x, y]) => x.graded.correct && !y.graded.correct).map(([x]) => x.graded.id);
  const families = a.scores.perFamily.map((f) => f.family);
  const perFamily = families.map((family) => {
    const x = a.scores.perFamily.find((f) => f.family === family)!;
    const y = b.scores.perFamily.find((f) => f.family === family)!;
    return { family, base: x.sr, other: y.sr, delta: y.sr - x.sr };
  });
  const behaviourDeltas = a.behaviours.map((s, i) => ({
    behaviour: s.behaviour,
    base: s.tasks,
    other: b.behaviours[i]!.tasks,
    delta: b.behaviours[i]!.tasks - s.tasks,
  }));
  const half = Math.ceil(maxCases / 2);
  const pickFixed = fixed.slice(0, Math.max(half, maxCases - broken.length));
  const pickBroken = broken.slice(0, maxCases - pickFixed.length);
  const byId = new Map(base.tasks.map((t) => [t.graded.id, t]));
  const same = base.protocol === other.protocol || (base.protocol !== 'text' && other.protocol !== 'text'); // tools and mcp share a prompt
  const caseStudies = [
    ...pickFixed.map((id) => caseStudy(byId.get(id)!, otherById.get(id)!, 'fixed', same)),
    ...pickBroken.map((id) => caseStudy(byId.get(id)!, otherById.get(id)!, 'broken', same)),
  ];
  return {
    base: base.label,
    other: other.label,
    protocols: { base: base.protocol, other: other.protocol },
    overallDelta: b.scores.successRate - a.scores.successRate,
    perFamily,
    mcnemar: mc,
    fixed,
    broken,
    behaviourDeltas,
    caseStudies,
  };
}

/**
 * The checkpoint-graded tasks of a run (clinical suite: a grade with a `score`), per family and per task; nothing for
 * a run without any (MedAgentBench runs: their reports are unchanged).
 */
export function checkpointsOf(run: LoadedRun): { checkpoints?: CheckpointSummary } {
  const graded = run.tasks.filter((t) => typeof t.graded.grade?.score === 'number');
  if (graded.length === 0) return {};
  const fams = new Map<string, CheckpointSummary['perFamily'][number] & { sum: number }>();
  const tasks: CheckpointSummary['tasks'] = [];
  for (const t of graded) {
    const g = t.graded.grade;
    const f = fams.get(t.graded.family) ?? { family: t.graded.family, tasks: 0, correct: 0, meanScore: 0, classes: {}, sum: 0 };
    f.tasks++;
    if (t.graded.correct) f.correct++;
    f.sum += g.score!;
    if (g.failureClass) f.classes[g.failureClass] = (f.classes[g.failureClass] ?? 0) + 1;
    fams.set(t.graded.family, f);
    tasks.push({
      id: t.graded.id,
      branch: g.branch ?? '',
      score: g.score!,
      failureClass: g.failureClass ?? null,
      firstFailed: g.checks.find((c) => !c.pass)?.name ?? null,
    });
  }
  const perFamily = [...fams.values()].map(({ sum, ...f }) => ({ ...f, meanScore: sum / f.tasks }));
  return { checkpoints: { perFamily, tasks } };
}
