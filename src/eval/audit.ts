/**
 * `ehrgym audit`: how many points a task set gives away. Each degenerate policy (src/agent/backends/degenerate.ts:
 * finish-empty, finish-nothing-found, give-up, read-then-finish, always-act) runs over the task set through `runEval`
 * (in-process, scripted, no model), and the audit reports each policy's success rate per family: a family's ceiling is
 * the best of them, the score an agent gets there without doing the task.
 */
import { FAMILY_IDS, SUITE_FAMILY_IDS, getFamily } from '../tasks/registry.js';
import { createAgent } from '../agent/create.js';
import { DEGENERATE_POLICIES, type DegeneratePolicy, modalAnswerAgent, modalAnswers, playsFinishEmpty } from '../agent/backends/degenerate.js';
import { readRunsFile } from './grade.js';
import type { PostMode } from '../agent/loop.js';
import type { Protocol } from '../protocol/action.js';
import { type EvalOptions, runEval, type TaskSet } from './run.js';
import type { FhirBackend } from './backend.js';
import { officialGrader } from './setup.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';

export interface AuditOptions {
  taskSet: TaskSet;
  backend: FhirBackend;
  /** A folder for the runs: one run folder per policy, `<out>/<policy>/` (the report reads them). */
  out: string;
  apiBase?: string;
  protocol?: Protocol;
  postMode?: PostMode;
  /** `mcp`: the episodes' tool environments (as `EvalOptions.toolEnvironment`). */
  toolEnvironment?: EvalOptions['toolEnvironment'];
  /** Only these families. */
  families?: string[];
  /** Episodes in parallel within one policy's run (policies run one after the other). */
  concurrency?: number;
  /** The policies to run, in this order (default all, `DEGENERATE_POLICIES`). */
  policies?: readonly DegeneratePolicy[];
  /** fsync every run-file line (default false: the run folders are a by-product that a new audit rewrites). */
  fsync?: boolean;
  signal?: AbortSignal;
  /** Called after each finished episode. */
  onEpisode?: (policy: DegeneratePolicy, e: { index: number; id: string; status: string }) => void;
}

/** One policy's results: per family (registry order) the tasks it passed. */
export interface AuditRow {
  policy: DegeneratePolicy;
  perFamily: Record<string, { correct: number; total: number }>;
  correct: number;
  total: number;
  /** Families where the policy has nothing of its own and sent `FINISH([])` (its rate there is finish-empty's). */
  playsFinishEmpty: string[];
  /** Episodes whose policy failed (a hook that broke; recorded in the run's error.jsonl, counted as incorrect). */
  agentFailures: number;
}

export interface AuditResult {
  taskSet: string;
  /** Tasks per policy (after the family filter). */
  tasks: number;
  protocol: Protocol;
  /** The families audited, in registry order. */
  families: string[];
  rows: AuditRow[];
  /** True when the signal stopped the audit (rows holds the policies that finished). */
  interrupted: boolean;
  /** Wall ms per policy, in row order. */
  ms: number[];
}

/** The families of `ids` (task ids) in registry order. */
function familiesOf(ids: Iterable<string>): string[] {
  const seen = new Set<string>();
  for (const id of ids) seen.add(id.split('_')[0]);
  return [...FAMILY_IDS, ...SUITE_FAMILY_IDS].filter((f) => seen.has(f));
}

export async function runAudit(opts: AuditOptions): Promise<AuditResult> {
  const policies = opts.policies ?? DEGENERATE_POLICIES;
  const protocol = opts.protocol ?? 'text';
  const selected = opts.taskSet.tasks.filter((t) => !opts.families?.length || opts.families.includes(t.id.split('_')[0]));
  const families = familiesOf(selected.map((t) => t.id));
  const rows: AuditRow[] = [];
  const ms: number[] = [];
  for (const policy of policies) {
    if (opts.signal?.aborted) break;
    const t0 = performance.now();
    const agent = policy === 'modal-answer' ? modalAnswerAgent(await oracleAnswers(opts)) : createAgent(policy);
    const res = await runEval({
      out: join(opts.out, policy),
      taskSet: opts.taskSet,
      agent,
      backend: opts.backend,
      grade: officialGrader,
      apiBase: opts.apiBase,
      protocol,
      postMode: opts.postMode ?? (protocol === 'text' ? 'official' : 'live'),
      toolEnvironment: opts.toolEnvironment,
      concurrency: opts.concurrency ?? 8,
      families: opts.families,
      progress: false,
      fsync: opts.fsync ?? false,
      signal: opts.signal,
      // scripted replies: an empty one is the policy's, not a broken endpoint's
      emptyReplyStreak: 0,
      onEpisode: opts.onEpisode ? (e) => opts.onEpisode!(policy, e) : undefined,
    });
    await agent.close?.();
    if (res.interrupted || !res.summary) break;
    const s = res.summary;
    const perFamily: AuditRow['perFamily'] = {};
    for (const f of families) {
      const v = s.perFamily[f];
      perFamily[f] = { correct: v?.correct ?? 0, total: v?.total ?? 0 };
    }
    rows.push({
      policy,
      perFamily,
      correct: s.correct,
      total: s.total,
      playsFinishEmpty: families.filter((f) => playsFinishEmpty(policy, getFamily(f))),
      agentFailures: s.agentFailures,
    });
    ms.push(performance.now() - t0);
  }
  return { taskSet: opts.taskSet.name, tasks: selected.length, protocol, families, rows, interrupted: rows.length < policies.length, ms };
}

/**
 * The right answers of the task set: an oracle pass (`<out>/oracle/`) and its graded answers, for `modal-answer`.
 * Only episodes the grader passed count.
 */
async function oracleAnswers(opts: AuditOptions): Promise<Map<string, string>> {
  const protocol = opts.protocol ?? 'text';
  const dir = join(opts.out, 'oracle');
  const agent = createAgent('oracle');
  const res = await runEval({
    out: dir,
    taskSet: opts.taskSet,
    agent,
    backend: opts.backend,
    grade: officialGrader,
    apiBase: opts.apiBase,
    protocol,
    postMode: opts.postMode ?? (protocol === 'text' ? 'official' : 'live'),
    toolEnvironment: opts.toolEnvironment,
    concurrency: opts.concurrency ?? 8,
    families: opts.families,
    progress: false,
    fsync: opts.fsync ?? false,
    signal: opts.signal,
    emptyReplyStreak: 0,
  });
  await agent.close?.();
  const ids = opts.taskSet.tasks.map((t) => t.id);
  const runs = readRunsFile(join(res.dir, 'runs.jsonl'), ids.length);
  const graded = new Map<number, boolean>();
  for (const line of readFileSync(join(res.dir, 'grades.jsonl'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const g = JSON.parse(line) as { index: number; correct: boolean };
    graded.set(g.index, g.correct === true);
  }
  const answers: Array<{ id: string; result: string }> = [];
  // in task order: a tie goes to the answer of the earliest task
  for (const [index, output] of [...runs.outputs].sort((a, b) => a[0] - b[0])) {
    if (graded.get(index) === true && typeof output.result === 'string') answers.push({ id: ids[index]!, result: output.result });
  }
  return modalAnswers(answers);
}

const rate = (c: { correct: number; total: number }) => (c.total > 0 ? c.correct / c.total : 0);

/** `--json`: `{"policies": {"<policy>": {"<family>": <rate 0..1>, …}, …}}`, policies in audit order, families in registry order. */
export function auditJson(r: AuditResult): { policies: Record<string, Record<string, number>> } {
  const policies: Record<string, Record<string, number>> = {};
  for (const row of r.rows) {
    const fams: Record<string, number> = {};
    for (const f of r.families) fams[f] = rate(row.perFamily[f]);
    policies[row.policy] = fams;
  }
  return { policies };
}

/** Per family, the highest rate of any policy (the family's ceiling) and the tasks it passed. */
export function familyCeilings(r: AuditResult): Record<string, { correct: number; total: number; rate: number; policies: DegeneratePolicy[] }> {
  const out: ReturnType<typeof familyCeilings> = {};
  for (const f of r.families) {
    let best = { correct: 0, total: r.rows[0]?.perFamily[f]?.total ?? 0 };
    for (const row of r.rows) if (rate(row.perFamily[f]) > rate(best)) best = row.perFamily[f];
    const top = rate(best);
    // a policy that only sent FINISH([]) there is not named (finish-empty is)
    const at = r.rows.filter((row) => !row.playsFinishEmpty.includes(f) && rate(row.perFamily[f]) === top);
    out[f] = { ...best, rate: top, policies: top > 0 ? at.map((row) => row.policy) : [] };
  }
  return out;
}

const pct = (x: number) => (x * 100).toFixed(1);

/**
 * The audit as a table: one row per policy, one column per family (success rate in %), the overall score; a last row
 * with each family's ceiling and the score of the best policy per family. Marks: `*` the family's ceiling (when above
 * 0), `~` the family has no such answer or action and the policy sent `FINISH([])`.
 */
export function formatAuditTable(r: AuditResult): string {
  const ceilings = familyCeilings(r);
  const nameW = Math.max('ceiling'.length, ...r.rows.map((row) => row.policy.length));
  const colW = Math.max(7, ...r.families.map((f) => f.length + 1));
  const pad = (s: string, w: number) => s.padStart(w);
  const countW = 2 * String(r.tasks).length + 1;
  const overall = (c: number, t: number) => `${pad(`${c}/${t}`, countW)} ${pad(pct(t > 0 ? c / t : 0), 5)}%`;
  const lines: string[] = [];
  lines.push(`degenerate policies on ${r.taskSet} (${r.tasks} tasks, protocol ${r.protocol}): success rate per family, %`);
  lines.push('');
  lines.push(`${'policy'.padEnd(nameW)}${r.families.map((f) => pad(f, colW + 1)).join('')}   ${'overall'.padEnd(countW + 7)}`.trimEnd());
  for (const row of r.rows) {
    const cells = r.families.map((f) => {
      const v = rate(row.perFamily[f]);
      const mark = row.playsFinishEmpty.includes(f) ? '~' : ceilings[f].policies.includes(row.policy) ? '*' : ' ';
      return pad(pct(v) + mark, colW + 1);
    });
    lines.push(`${row.policy.padEnd(nameW)}${cells.join('')}   ${overall(row.correct, row.total)}`);
  }
  let best = 0;
  let total = 0;
  for (const f of r.families) {
    best += ceilings[f].correct;
    total += ceilings[f].total;
  }
  lines.push(`${'ceiling'.padEnd(nameW)}${r.families.map((f) => pad(pct(ceilings[f].rate) + ' ', colW + 1)).join('')}   ${overall(best, total)}`);
  lines.push('');
  lines.push("* the family's ceiling (its highest rate); ~ no such answer or action in the family: the policy sent FINISH([])");
  lines.push('ceiling overall: the best policy in each family, chosen per family');
  const top = Math.max(0, ...r.families.map((f) => ceilings[f].rate));
  if (top > 0) {
    const at = r.families.filter((f) => ceilings[f].rate === top).map((f) => `${f} ${ceilings[f].policies.join(', ')}`);
    lines.push(`highest: ${pct(top)}% (${at.join('; ')})`);
  } else lines.push('highest: 0.0% (no degenerate policy passes any task)');
  return lines.join('\n') + '\n';
}

/**
 * The families where a policy's rate exceeds `maxRate`, worst first (ties in registry order), one line each naming the
 * policies above it, worst first. A policy that only sent `FINISH([])` on a family is not named again there (its rate
 * is finish-empty's).
 */
export function rateViolations(r: AuditResult, maxRate: number): string[] {
  const out: Array<{ worst: number; order: number; line: string }> = [];
  r.families.forEach((f, order) => {
    const over = r.rows
      .filter((row) => !row.playsFinishEmpty.includes(f) && rate(row.perFamily[f]) > maxRate)
      .sort((a, b) => rate(b.perFamily[f]) - rate(a.perFamily[f]));
    if (over.length === 0) return;
    const named = over.map((row) => `${row.policy} ${row.perFamily[f].correct}/${row.perFamily[f].total} (${pct(rate(row.perFamily[f]))}%)`);
    out.push({ worst: rate(over[0].perFamily[f]), order, line: `${f}: ${named.join(', ')} > ${pct(maxRate)}%` });
  });
  return out.sort((a, b) => b.worst - a.worst || a.order - b.order).map((x) => x.line);
}
