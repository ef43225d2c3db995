/**
 * `ehrgym merge` for run folders: the shards of one `ehrgym eval … --shard i/N` run become the folder the same run
 * makes unsharded. The log files (runs.jsonl, error.jsonl, episodes.jsonl) are the shards' lines, byte for byte, in
 * slot order (task index, then trial: the order an unsharded run at concurrency 1 writes); overall.json, grades.jsonl
 * and summary.json are written by the run's own finish stage (`finishRun`) over the union of the shards' episodes and
 * verdicts; manifest.json is the shards' manifest without its shard stamp.
 *
 * Refused, with one line naming the folder: a folder that is not a run shard, shards of different runs (configuration
 * hash), a shard given twice, missing shards, and a shard whose run did not finish.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { GradeResult, TaskOutput } from '../tasks/types.js';
import type { GradedTask, RunManifest, RunSummary, RunsLine } from './types.js';
import { EvalError, type EpisodeStatsLine, finishRun, RUN_FILES, runConfigHash, runPaths, slotKey } from './run.js';
import { formatShard, missingShards } from './shard.js';

/** The reply cache a run keeps beside its files by default (`--reply-cache` without a file). */
const REPLY_CACHE_FILE = 'reply-cache.jsonl';

interface LogLine {
  slot: number;
  text: string;
}

interface RunShard {
  dir: string;
  manifest: RunManifest & { shard: NonNullable<RunManifest['shard']> };
  summary: RunSummary;
  runs: LogLine[];
  errors: LogLine[];
  episodes: LogLine[];
  grades: GradedTask[];
}

export interface MergeRunResult {
  out: string;
  shards: number;
  summary: RunSummary & { agentFailures: number };
}

/** Whether `dir` holds a run folder (a manifest.json of `ehrgym eval`). */
export function isRunFolder(dir: string): boolean {
  const p = join(dir, RUN_FILES.manifest);
  if (!existsSync(p)) return false;
  try {
    const m = JSON.parse(readFileSync(p, 'utf8')) as Partial<RunManifest>;
    return typeof m.harnessVersion === 'string' && typeof m.taskSet === 'object';
  } catch {
    return false;
  }
}

/** The complete lines of a JSON Lines file; `torn` when the file ends inside a line. */
function lines(path: string): { lines: string[]; torn: boolean } {
  if (!existsSync(path)) return { lines: [], torn: false };
  const text = readFileSync(path, 'utf8');
  const parts = text.split('\n');
  const last = parts.pop()!;
  return { lines: parts.filter((l) => l.trim() !== ''), torn: last.trim() !== '' };
}

function readShard(dir: string): RunShard {
  const paths = runPaths(dir);
  let manifest: RunManifest;
  try {
    manifest = JSON.parse(readFileSync(paths.manifest, 'utf8')) as RunManifest;
  } catch {
    throw new EvalError(`${dir}: ${RUN_FILES.manifest} is not valid JSON`);
  }
  if (!manifest.shard) throw new EvalError(`${dir}: not a shard (its manifest has no shard stamp; make shards with ehrgym eval … --shard i/N)`);
  const { index, count, config } = manifest.shard;
  if (runConfigHash(manifest) !== config) throw new EvalError(`${dir}: its manifest does not match its shard stamp (edited by hand?)`);
  const name = `shard ${formatShard({ index, count })}`;
  const unfinished = (why: string) =>
    new EvalError(`${dir}: ${name} did not finish (${why}); complete it with ehrgym eval … --shard ${formatShard({ index, count })} --resume`);
  if (!existsSync(paths.summary)) throw unfinished(`no ${RUN_FILES.summary}`);
  const summary = JSON.parse(readFileSync(paths.summary, 'utf8')) as RunSummary;
  const trials = manifest.trials ?? 1;
  const keyed = (file: string): LogLine[] => {
    const r = lines(file);
    if (r.torn) throw unfinished(`${basename(file)} ends inside a line`);
    return r.lines.map((text, i) => {
      let v: { index?: unknown; trial?: number; output?: { index?: unknown } };
      try {
        v = JSON.parse(text);
      } catch {
        throw new EvalError(`${file}:${i + 1}: not valid JSON`);
      }
      const idx = typeof v.index === 'number' ? v.index : v.output?.index;
      if (typeof idx !== 'number') throw new EvalError(`${file}:${i + 1}: no task index`);
      return { slot: slotKey(idx, v.trial, trials), text };
    });
  };
  const runs = keyed(paths.runs);
  const errors = keyed(paths.errors);
  const episodes = keyed(paths.episodes);
  const grades = lines(paths.grades).lines.map((l) => JSON.parse(l) as GradedTask);
  // a finished shard graded every episode its log holds; a resumed shard stopped before finishing has more
  const graded = new Set(grades.map((g) => slotKey(g.index, g.trial, trials)));
  const ungraded = runs.filter((r) => !graded.has(r.slot));
  if (ungraded.length > 0 || grades.length !== summary.total) throw unfinished(`${ungraded.length} episode(s) of its runs.jsonl are not in its grades.jsonl`);
  return { dir, manifest: manifest as RunShard['manifest'], summary, runs, errors, episodes, grades };
}

/** `a.b.c` of an object. */
function at(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
}

/** Lines of every shard, ordered by slot (a slot's lines keep their shard's order). */
function bySlot(shards: RunShard[], pick: (s: RunShard) => LogLine[]): LogLine[] {
  return shards.flatMap(pick).sort((a, b) => a.slot - b.slot);
}

/**
 * Merges the run shards in `dirs` into `out` (absent or empty). Throws EvalError (one line, naming the folder) when
 * the shards cannot make one run.
 */
export function mergeRunShards(dirs: string[], out: string): MergeRunResult {
  const shards = dirs.map(readShard);
  const first = shards[0];
  const { count, config } = first.manifest.shard;
  const byIndex = new Map<number, RunShard>();
  for (const s of shards) {
    const sh = s.manifest.shard;
    if (sh.config !== config || sh.count !== count) {
      throw new EvalError(
        `${s.dir}: a shard of a different run (configuration ${sh.config.slice(0, 12)}, ${sh.count} shards) than ${first.dir} (configuration ${config.slice(0, 12)}, ${count} shards)`,
      );
    }
    const dup = byIndex.get(sh.index);
    if (dup) throw new EvalError(`${s.dir}: shard ${formatShard(sh)} is given twice (also ${dup.dir})`);
    byIndex.set(sh.index, s);
  }
  const missing = missingShards(byIndex.keys(), count);
  if (missing.length > 0) {
    const list = missing.slice(0, 20).map((i) => formatShard({ index: i, count }));
    throw new EvalError(
      `missing shard${missing.length > 1 ? 's' : ''} ${list.join(', ')}${missing.length > 20 ? `, … (${missing.length} in all)` : ''} of the run in ${first.dir} (${shards.length} of ${count} given)`,
    );
  }
  const ordered = [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!);
  // an episode belongs to one shard: the same slot in two shards means the folders were tampered with
  const owner = new Map<number, string>();
  for (const s of ordered) {
    for (const r of s.runs) {
      const o = owner.get(r.slot);
      if (o !== undefined && o !== s.dir) throw new EvalError(`${s.dir}: holds an episode (slot ${r.slot}) that ${o} holds too`);
      owner.set(r.slot, s.dir);
    }
  }

  // ---- the unsharded run's manifest: the shard's, without its stamp; a reply cache kept beside the shard's files
  // is kept beside the merged files
  const target = resolve(out);
  const { shard: _stamp, ...manifest } = ordered[0].manifest;
  const cachePaths = ordered.map((s) => at(s.manifest, 'agent.config.replyCache'));
  const localCache = ordered.every((s, i) => cachePaths[i] === join(resolve(s.dir), REPLY_CACHE_FILE));
  if (localCache) (manifest.agent.config as Record<string, unknown>).replyCache = join(target, REPLY_CACHE_FILE);

  const trials = manifest.trials ?? 1;
  const runs = bySlot(ordered, (s) => s.runs);
  const errors = bySlot(ordered, (s) => s.errors);
  const episodes = bySlot(ordered, (s) => s.episodes);
  const outputs = new Map<number, TaskOutput>();
  for (const r of runs) if (!outputs.has(r.slot)) outputs.set(r.slot, (JSON.parse(r.text) as RunsLine).output);
  const agentErrors = new Map<number, string>();
  for (const e of errors) agentErrors.set(e.slot, String((JSON.parse(e.text) as RunsLine).info ?? ''));
  const epStats = new Map<number, EpisodeStatsLine>();
  for (const e of episodes) epStats.set(e.slot, JSON.parse(e.text) as EpisodeStatsLine);
  const grades = new Map<number, GradeResult>();
  const slots: Array<{ index: number; trial: number; slot: number; id: string }> = [];
  for (const s of ordered) {
    for (const g of s.grades) {
      const slot = slotKey(g.index, g.trial, trials);
      slots.push({ index: g.index, trial: g.trial ?? 1, slot, id: g.id });
      if (outputs.has(slot)) grades.set(slot, g.grade);
    }
  }
  slots.sort((a, b) => a.slot - b.slot);

  // ---- write into a sibling folder, then rename it into place
  if (existsSync(target) && readdirSync(target).length > 0) throw new EvalError(`--out ${out}: is not empty (merge writes a new run folder)`);
  const tmp = join(dirname(target), `.${basename(target)}.merge-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const paths = runPaths(tmp);
    const text = (ls: LogLine[]) => ls.map((l) => `${l.text}\n`).join('');
    writeFileSync(paths.manifest, JSON.stringify(manifest, null, 2) + '\n');
    writeFileSync(paths.runs, text(runs));
    writeFileSync(paths.errors, text(errors));
    writeFileSync(paths.episodes, text(episodes));
    if (localCache) {
      // the cache is a set keyed by request: each key once, shards in index order
      const seen = new Set<string>();
      const cache: string[] = [];
      for (const s of ordered) {
        for (const l of lines(join(s.dir, REPLY_CACHE_FILE)).lines) {
          const key = (JSON.parse(l) as { key: string }).key;
          if (seen.has(key)) continue;
          seen.add(key);
          cache.push(`${l}\n`);
        }
      }
      if (cache.length > 0) writeFileSync(join(tmp, REPLY_CACHE_FILE), cache.join(''));
    }
    // summary.json's wall time: the shards' wall times added up (the time the run's episodes took, one shard after another)
    const wallMs = ordered.reduce((a, s) => a + (s.summary.wallMs ?? 0), 0);
    const summary = finishRun({ paths, manifest, trials, slots, outputs, grades, agentErrors, epStats, wallMs: () => wallMs });
    if (existsSync(target)) rmSync(target, { recursive: true });
    mkdirSync(dirname(target), { recursive: true });
    renameSync(tmp, target);
    return { out: target, shards: count, summary };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
