/**
 * Sharded work (`--shard i/N`): a run is split into N shards by a deterministic rule keyed by task, each shard an
 * ordinary run folder (or corpus shard) that an outside scheduler runs wherever it likes (a Kubernetes Indexed Job, a
 * Slurm array); `ehrgym merge` puts the shards back together. The index is 0-based, as Kubernetes'
 * `JOB_COMPLETION_INDEX` and Slurm's `SLURM_ARRAY_TASK_ID` (with `--array=0-(N-1)`) are.
 */

/** Shard `index` of `count` (0 ≤ index < count). */
export interface ShardSpec {
  index: number;
  count: number;
}

/** The largest shard count accepted (more shards than that is a mistake, not a plan). */
export const MAX_SHARDS = 100_000;

/**
 * Parses `i/N` (0-based: `0/4` … `3/4`). Returns the reason as a string when the text is not a shard, so each
 * command reports it in its own way.
 */
export function parseShardSpec(text: string): ShardSpec | string {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) return `expected i/N (0-based shard index i of N shards, e.g. 0/4), got "${text}"`;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) return `the shard count N must be between 1 and ${MAX_SHARDS}, got "${text}"`;
  if (index >= count) return `the shard index is 0-based: i must be between 0 and ${count - 1} for ${count} shards, got "${text}"`;
  return { index, count };
}

/** `i/N`. */
export function formatShard(s: ShardSpec): string {
  return `${s.index}/${s.count}`;
}

/** Whether the item at `position` (0-based, in the run's task order) belongs to shard `s`: round-robin. */
export function inShard(position: number, s: ShardSpec): boolean {
  return position % s.count === s.index;
}

/** `missing shard(s) 1/4, 3/4` style list of the indices in 0..count-1 that `have` lacks. */
export function missingShards(have: Iterable<number>, count: number): number[] {
  const got = new Set(have);
  const missing: number[] = [];
  for (let i = 0; i < count; i++) if (!got.has(i)) missing.push(i);
  return missing;
}
