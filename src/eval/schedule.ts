/**
 * Which episode a free worker starts next.
 *
 * With one worker, episodes start in task order (an interrupted run leaves a prefix of the selection). With more, the
 * run's wall time is set by its tail: an episode of many rounds started late keeps one worker busy while the others
 * have nothing left to do. So the scheduler starts the episodes expected to be longest first (longest-processing-time
 * first, the classic list-scheduling rule): each family's expected rounds start from its expert policy's turns
 * (`TaskFamily.turns`, the midpoint of fewest and most) and move to the mean rounds the run's own finished episodes of
 * that family took, so a model that needs more turns than the expert on some family reorders the rest of the run.
 * Families with equal expectations are dealt round-robin (first-appearance order, task order within a family), so a
 * task file's family blocks do not run one after another. A family outside the registry expects the fewest turns any
 * answered task takes (one action and FINISH).
 *
 * The order only decides when an episode starts: no episode's transcript or verdict depends on it, and the derived run
 * files are written in task order.
 */
import { getFamily, isFamilyId } from '../tasks/registry.js';
import type { TaskCase } from '../tasks/types.js';
import { familyOf } from './score.js';

/** Expected rounds of a family outside the registry. */
export const DEFAULT_EXPECTED_ROUNDS = 2;
/** How many finished episodes the family's prior counts as. */
const PRIOR_WEIGHT = 2;

/** The expert's turns for a family as the scheduler's prior: the midpoint of fewest and most. */
export function priorRounds(family: string): number {
  if (!isFamilyId(family)) return DEFAULT_EXPECTED_ROUNDS;
  const { min, max } = getFamily(family).turns;
  return (min + max) / 2;
}

interface FamilyQueue<T> {
  family: string;
  items: T[];
  head: number;
  prior: number;
  observed: number;
  sum: number;
}

/** A family's expected rounds: its prior, counted as PRIOR_WEIGHT episodes, averaged with the rounds observed. */
function estimate(q: FamilyQueue<unknown>): number {
  return (q.prior * PRIOR_WEIGHT + q.sum) / (PRIOR_WEIGHT + q.observed);
}

export class EpisodeScheduler<T extends { index: number; task: TaskCase }> {
  private readonly queues: FamilyQueue<T>[] = [];
  private readonly byFamily = new Map<string, FamilyQueue<T>>();
  private readonly inOrder: T[];
  private readonly serial: boolean;
  private served = -1;
  private pos = 0;
  private left: number;

  /** `items` in task order; `workers` is the run's concurrency. */
  constructor(items: readonly T[], workers: number, prior: (family: string) => number = priorRounds) {
    this.inOrder = [...items];
    this.left = items.length;
    for (const it of items) {
      const family = familyOf(it.task.id);
      let q = this.byFamily.get(family);
      if (!q) {
        q = { family, items: [], head: 0, prior: prior(family), observed: 0, sum: 0 };
        this.byFamily.set(family, q);
        this.queues.push(q);
      }
      q.items.push(it);
    }
    this.serial = workers <= 1 || this.queues.length <= 1;
  }

  /** Episodes not started yet. */
  get remaining(): number {
    return this.left;
  }

  /** The rounds an episode of `family` is expected to take now. */
  expected(family: string): number {
    const q = this.byFamily.get(family);
    return q ? estimate(q) : DEFAULT_EXPECTED_ROUNDS;
  }

  /** The episode to start next, or undefined when every one has started. */
  next(): T | undefined {
    if (this.left === 0) return undefined;
    this.left--;
    if (this.serial) return this.inOrder[this.pos++];
    // the family with the longest expected episodes; among equals, the first after the family served last
    const n = this.queues.length;
    let best: FamilyQueue<T> | undefined;
    let bestAt = -1;
    let bestExp = -Infinity;
    for (let k = 1; k <= n; k++) {
      const at = (this.served + k) % n;
      const q = this.queues[at];
      if (q.head >= q.items.length) continue;
      const e = estimate(q);
      if (e > bestExp) {
        best = q;
        bestAt = at;
        bestExp = e;
      }
    }
    this.served = bestAt;
    return best!.items[best!.head++];
  }

  /** A finished episode of `item`'s task took `rounds` model turns. */
  observe(item: T, rounds: number): void {
    const q = this.byFamily.get(familyOf(item.task.id));
    if (!q) return;
    q.observed++;
    q.sum += rounds;
  }
}

/**
 * The makespan, in rounds, of running `items` on `workers` workers under the scheduler when each episode takes
 * `rounds(item)` rounds and costs nothing else: the floor a run's wall time can reach with a model of fixed latency per
 * call. Completions at the same moment are taken in task order.
 */
export function simulateSchedule<T extends { index: number; task: TaskCase }>(
  items: readonly T[],
  workers: number,
  rounds: (item: T) => number,
  prior: (family: string) => number = priorRounds,
): number {
  const sched = new EpisodeScheduler(items, workers, prior);
  const running: Array<{ end: number; item: T }> = [];
  const start = (now: number) => {
    const item = sched.next();
    if (item) running.push({ end: now + rounds(item), item });
  };
  for (let w = 0; w < Math.max(1, workers); w++) start(0);
  let makespan = 0;
  while (running.length > 0) {
    running.sort((a, b) => a.end - b.end || a.item.index - b.item.index);
    const done = running.shift()!;
    makespan = done.end;
    sched.observe(done.item, rounds(done.item));
    start(done.end);
  }
  return makespan;
}
