/**
 * Statistics over several trials per task (`ehrgym eval --trials K`), per family and overall:
 *
 * - pass@k, the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", eq. 1):
 *   per task with n trials of which c pass, 1 − C(n−c, k) / C(n, k) (the chance that at least one of k trials drawn
 *   without replacement passes), averaged over tasks. pass@1 is the mean success rate over all trials.
 * - pass^k, as τ-bench defines it (Yao et al. 2024, "τ-bench", §5): per task C(c, k) / C(n, k) (the chance that k
 *   trials drawn without replacement all pass), averaged over tasks. It falls with k for an agent that is not reliable.
 * - consistency: the share of tasks whose trials all agree (all pass or all fail).
 * - pass@1's 95 % interval: normal interval over the per-task success rates (mean ± 1.96 · sd / √tasks), the trials of
 *   a task being correlated.
 */

/** C(n, k) / C(m, k) for m ≥ n ≥ 0 as a product (no overflow). */
function combRatio(n: number, m: number, k: number): number {
  if (k > n) return 0;
  let r = 1;
  for (let i = 0; i < k; i++) r *= (n - i) / (m - i);
  return r;
}

/** Unbiased pass@k for one task: n trials, c passes. */
export function passAtK(n: number, c: number, k: number): number {
  if (k < 1 || k > n) throw new RangeError(`pass@k needs 1 ≤ k ≤ n (k ${k}, n ${n})`);
  return 1 - combRatio(n - c, n, k);
}

/** τ-bench pass^k for one task: n trials, c passes. */
export function passHatK(n: number, c: number, k: number): number {
  if (k < 1 || k > n) throw new RangeError(`pass^k needs 1 ≤ k ≤ n (k ${k}, n ${n})`);
  return combRatio(c, n, k);
}

export interface TrialScores {
  tasks: number;
  /** pass@k for k = 1..trials (keys "1", "2", …). */
  passAtK: Record<string, number>;
  /** pass^k for k = 1..trials. */
  passHatK: Record<string, number>;
  /** Share of tasks whose trials all agree. */
  consistency: number;
}

export interface TrialStats extends TrialScores {
  trials: number;
  /** pass@1's 95 % interval (normal, over per-task success rates). */
  pass1Interval: [number, number];
  estimators: { passAtK: string; passHatK: string };
  perFamily: Record<string, TrialScores>;
}

function scores(tasks: ReadonlyArray<{ outcomes: readonly boolean[] }>, trials: number): TrialScores {
  const passAt: Record<string, number> = {};
  const passHat: Record<string, number> = {};
  for (let k = 1; k <= trials; k++) {
    let a = 0;
    let h = 0;
    for (const t of tasks) {
      const c = t.outcomes.filter(Boolean).length;
      a += passAtK(t.outcomes.length, c, k);
      h += passHatK(t.outcomes.length, c, k);
    }
    passAt[String(k)] = tasks.length ? a / tasks.length : 0;
    passHat[String(k)] = tasks.length ? h / tasks.length : 0;
  }
  const agree = tasks.filter((t) => t.outcomes.every((o) => o === t.outcomes[0])).length;
  return { tasks: tasks.length, passAtK: passAt, passHatK: passHat, consistency: tasks.length ? agree / tasks.length : 0 };
}

/** The statistics of a run with `trials` trials per task (`outcomes[t]`: whether trial t+1 passed). */
export function trialStats(tasks: ReadonlyArray<{ id: string; outcomes: readonly boolean[] }>, trials: number): TrialStats {
  for (const t of tasks) if (t.outcomes.length !== trials) throw new RangeError(`${t.id}: ${t.outcomes.length} outcomes for ${trials} trials`);
  const rates = tasks.map((t) => t.outcomes.filter(Boolean).length / trials);
  const n = rates.length;
  const mean = n ? rates.reduce((a, b) => a + b, 0) / n : 0;
  const sd = n > 1 ? Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n ? (1.96 * sd) / Math.sqrt(n) : 0;
  const byFamily = new Map<string, Array<{ outcomes: readonly boolean[] }>>();
  for (const t of tasks) {
    const f = t.id.split('_')[0];
    if (!byFamily.has(f)) byFamily.set(f, []);
    byFamily.get(f)!.push(t);
  }
  const perFamily: Record<string, TrialScores> = {};
  for (const [f, ts] of byFamily) perFamily[f] = scores(ts, trials);
  return {
    trials,
    ...scores(tasks, trials),
    pass1Interval: [Math.max(0, mean - half), Math.min(1, mean + half)],
    estimators: {
      passAtK: 'unbiased estimator 1 - C(n-c,k)/C(n,k), Chen et al. 2021',
      passHatK: 'C(c,k)/C(n,k), tau-bench (Yao et al. 2024)',
    },
    perFamily,
  };
}
