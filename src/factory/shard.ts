/**
 * Sharded corpora (`ehrgym generate … --shard i/N`, `ehrgym merge`).
 *
 * What is split: the expert episodes of the first synthesis round (which is where nearly every row comes from), keyed
 * by task — the round's instances grouped by task id in draw order, task k going to shard k mod N, so a task's
 * augmented copies (variants, paraphrase) stay in its shard. Every shard synthesizes the round itself (cheap and
 * deterministic: the draws depend only on the parameters and the world) and solves, grades and parity-checks its
 * slice; it writes the results, not a corpus: `manifest.json` (the corpus identity, `{index, count}`, the parameters)
 * and `solved.jsonl` (one `{position, session, result}` per instance of its slice, `result` the row or the reason it
 * was dropped).
 *
 * The merge runs the pipeline's remaining stages over the union (`mergeCorpusShards`): the first round's results come
 * from the shards in draw order, then dedup, pollution and length filters, the later rounds (which draw only what the
 * first one left unfilled, from results no shard can know in advance; they are solved by the merge), collect and
 * assemble — the same code in the same order as an unsharded run, so the corpus is byte-identical to it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { formatShard, inShard, missingShards, type ShardSpec } from '../eval/shard.js';
import { VERSION } from '../version.js';
import type { CorpusManifest, GenerateParams } from './corpus.js';
import { FactoryInputError } from './errors.js';
import {
  episodeSession,
  finishCorpus,
  type GenerateResult,
  type GenerateRunOptions,
  type Instance,
  openPipeline,
  runRounds,
  type SolveResult,
} from './generate.js';
import { checkOutputFolder, IDENTITY_FILE, readIdentity, writeFolderAtomic } from './output.js';

/** The identity kind of a corpus shard folder (`.ehrgym.json`). */
export const CORPUS_SHARD_KIND = 'sft-corpus-shard';
export const SHARD_MANIFEST_FILE = 'manifest.json';
export const SHARD_RESULTS_FILE = 'solved.jsonl';

export interface CorpusShardManifest {
  kind: typeof CORPUS_SHARD_KIND;
  /** The corpus identity (`corpusIdentity`): the same for every shard of one corpus and for the merged corpus. */
  corpus_id: string;
  shard: ShardSpec;
  ehrgym: string;
  /** The corpus parameters without the output folder (the merge's `--out` takes its place). */
  params: Omit<GenerateParams, 'out'>;
  /** First-round instances in the whole corpus, and how many of them (and of their tasks) this shard solved. */
  round1: { instances: number; tasks: number; solved_here: number; tasks_here: number };
}

/** One line of solved.jsonl. */
interface ShardResultLine {
  /** The instance's position in the first round's draw order. */
  position: number;
  /** Its sandbox session (checks that the merge's draw is the shard's). */
  session: string;
  result: SolveResult;
}

/** The shard (0-based) that solves each instance: instances grouped by task id in draw order, task k to shard k mod N. */
export function instanceShards(instances: Instance[], count: number): number[] {
  const taskPos = new Map<string, number>();
  return instances.map((inst) => {
    const id = inst.gen.task.id;
    if (!taskPos.has(id)) taskPos.set(id, taskPos.size);
    const k = taskPos.get(id)!;
    for (let s = 0; s < count; s++) if (inShard(k, { index: s, count })) return s;
    return 0;
  });
}

function sessionOf(seed: number, inst: Instance): string {
  return episodeSession(seed, inst.gen.task.id, inst.variant, inst.augmentation);
}

/** The identity id of shard `s` of corpus `corpusId` (so one shard's folder is never taken for another's). */
function shardIdentity(corpusId: string, s: ShardSpec): string {
  return `${corpusId}#${formatShard(s)}`;
}

export interface GenerateShardResult {
  manifest: CorpusShardManifest;
  files: Record<string, string>;
}

/**
 * `ehrgym generate … --shard i/N`: synthesize the first round, solve this shard's slice of it, write the results to
 * `params.out` (atomically; a killed shard leaves nothing and is run again). Needs no tokenizer (filters run at merge).
 */
export async function generateShard(opts: GenerateRunOptions & { shard: ShardSpec }): Promise<GenerateShardResult> {
  const { params: p, shard } = opts;
  const pl = await openPipeline(opts, {
    needTokenizer: false,
    checkOut: (id) => {
      if (opts.write !== false) checkOutputFolder(p.out, { kind: CORPUS_SHARD_KIND, id: shardIdentity(id, shard) }, opts.force ?? false);
    },
  });
  try {
    const { instances } = await pl.synthesize(0);
    const owner = instanceShards(instances, shard.count);
    const mine = instances.map((inst, position) => ({ inst, position })).filter((x) => owner[x.position] === shard.index);
    const results = await pl.solve(
      mine.map((m) => m.inst),
      0,
    );
    const lines = mine.map((m, k) =>
      JSON.stringify({ position: m.position, session: sessionOf(p.seed, m.inst), result: results[k] } satisfies ShardResultLine),
    );
    const { out: _out, ...params } = p;
    const manifest: CorpusShardManifest = {
      kind: CORPUS_SHARD_KIND,
      corpus_id: pl.corpusId,
      shard: { index: shard.index, count: shard.count },
      ehrgym: VERSION,
      params,
      round1: {
        instances: instances.length,
        tasks: new Set(instances.map((i) => i.gen.task.id)).size,
        solved_here: mine.length,
        tasks_here: new Set(mine.map((m) => m.inst.gen.task.id)).size,
      },
    };
    const files = {
      [SHARD_MANIFEST_FILE]: JSON.stringify(manifest, null, 2) + '\n',
      [SHARD_RESULTS_FILE]: lines.map((l) => `${l}\n`).join(''),
    };
    if (opts.write !== false) {
      opts.onStage?.('write');
      writeFolderAtomic(p.out, { kind: CORPUS_SHARD_KIND, id: shardIdentity(pl.corpusId, shard) }, files, opts.force ?? false);
    }
    return { manifest, files };
  } finally {
    await pl.close();
  }
}

/** Whether `dir` holds a corpus shard. */
export function isCorpusShard(dir: string): boolean {
  return readIdentity(dir)?.kind === CORPUS_SHARD_KIND;
}

interface CorpusShard {
  dir: string;
  manifest: CorpusShardManifest;
  results: Map<number, ShardResultLine>;
}

/** The folder a shard killed while writing leaves (`.<name>.tmp-<pid>` beside `dir`), if any. */
export function unfinishedShardFolder(dir: string): string | undefined {
  const abs = resolve(dir);
  const parent = dirname(abs);
  if (!existsSync(parent)) return undefined;
  const prefix = `.${basename(abs)}.tmp-`;
  return readdirSync(parent).find((n) => n.startsWith(prefix));
}

function readCorpusShard(dir: string): CorpusShard {
  const ident = readIdentity(dir);
  if (ident?.kind !== CORPUS_SHARD_KIND) {
    if (unfinishedShardFolder(dir))
      throw new FactoryInputError(`${dir}: the shard did not finish (only its temporary folder ${unfinishedShardFolder(dir)} is there); run it again`);
    throw new FactoryInputError(`${dir}: not a corpus shard (make shards with ehrgym generate … --shard i/N)`);
  }
  let manifest: CorpusShardManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, SHARD_MANIFEST_FILE), 'utf8')) as CorpusShardManifest;
  } catch {
    throw new FactoryInputError(`${dir}: the shard did not finish (${SHARD_MANIFEST_FILE} is missing or not valid JSON); run it again`);
  }
  if (ident.id !== shardIdentity(manifest.corpus_id, manifest.shard)) throw new FactoryInputError(`${dir}: its ${IDENTITY_FILE} does not match its manifest`);
  const results = new Map<number, ShardResultLine>();
  const path = join(dir, SHARD_RESULTS_FILE);
  const text = existsSync(path) ? readFileSync(path, 'utf8') : null;
  if (text === null || (text !== '' && !text.endsWith('\n')))
    throw new FactoryInputError(`${dir}: the shard did not finish (${SHARD_RESULTS_FILE} is missing or cut short); run it again`);
  text
    .split('\n')
    .filter(Boolean)
    .forEach((l, i) => {
      let v: ShardResultLine;
      try {
        v = JSON.parse(l) as ShardResultLine;
      } catch {
        throw new FactoryInputError(`${path}:${i + 1}: not valid JSON`);
      }
      results.set(v.position, v);
    });
  if (results.size !== manifest.round1.solved_here) {
    throw new FactoryInputError(`${dir}: the shard did not finish (${results.size} of its ${manifest.round1.solved_here} results); run it again`);
  }
  return { dir, manifest, results };
}

/**
 * `ehrgym merge` for corpus shards: checks the set (one corpus, every shard once), then runs the pipeline with the
 * first round's results from the shards and writes the corpus to `opts.out` exactly as `ehrgym generate` without
 * `--shard` would (its manifest and card record `--out` as given to the merge).
 */
export async function mergeCorpusShards(
  dirs: string[],
  opts: Omit<GenerateRunOptions, 'params'> & { out: string },
): Promise<GenerateResult & { shards: number; episodes: { fromShards: number; solvedByMerge: number } }> {
  const shards = dirs.map(readCorpusShard);
  const first = shards[0]!;
  const { count } = first.manifest.shard;
  const byIndex = new Map<number, CorpusShard>();
  for (const s of shards) {
    const m = s.manifest;
    if (m.corpus_id !== first.manifest.corpus_id || m.shard.count !== count) {
      throw new FactoryInputError(
        `${s.dir}: a shard of a different corpus (identity ${m.corpus_id.slice(0, 12)}, ${m.shard.count} shards) than ${first.dir} (identity ${first.manifest.corpus_id.slice(0, 12)}, ${count} shards)`,
      );
    }
    const dup = byIndex.get(m.shard.index);
    if (dup) throw new FactoryInputError(`${s.dir}: shard ${formatShard(m.shard)} is given twice (also ${dup.dir})`);
    byIndex.set(m.shard.index, s);
  }
  const missing = missingShards(byIndex.keys(), count);
  if (missing.length > 0) {
    const list = missing.slice(0, 20).map((i) => formatShard({ index: i, count }));
    throw new FactoryInputError(
      `missing shard${missing.length > 1 ? 's' : ''} ${list.join(', ')}${missing.length > 20 ? `, … (${missing.length} in all)` : ''} of the corpus in ${first.dir} (${shards.length} of ${count} given)`,
    );
  }
  const params: GenerateParams = { ...first.manifest.params, out: opts.out };
  const run: GenerateRunOptions = { ...opts, params };
  const pl = await openPipeline(run, {
    checkOut: (id) => {
      if (id !== first.manifest.corpus_id) {
        throw new FactoryInputError(
          `${first.dir}: its parameters now name corpus ${id.slice(0, 12)}, not ${first.manifest.corpus_id.slice(0, 12)} (the --collect files or the ehrgym version changed since the shards ran)`,
        );
      }
      checkOutputFolder(opts.out, { kind: 'sft-corpus', id }, opts.force ?? false);
    },
  });
  try {
    // round 1 from the shards, each instance from the shard that owns it; later rounds solved here
    const fromShards = async (instances: Instance[]): Promise<SolveResult[]> => {
      const owner = instanceShards(instances, count);
      return instances.map((inst, position) => {
        const s = byIndex.get(owner[position]!)!;
        if (s.manifest.round1.instances !== instances.length) {
          throw new FactoryInputError(`${s.dir}: its first round drew ${s.manifest.round1.instances} instances, this merge draws ${instances.length}`);
        }
        const line = s.results.get(position);
        const session = sessionOf(params.seed, inst);
        if (!line || line.session !== session)
          throw new FactoryInputError(`${s.dir}: no result for instance ${position} (${session}) of shard ${formatShard(s.manifest.shard)}`);
        return line.result;
      });
    };
    let fromRound1 = 0;
    let solvedHere = 0;
    await runRounds(pl, (instances, round) => {
      if (round === 0) {
        fromRound1 += instances.length;
        return fromShards(instances);
      }
      solvedHere += instances.length;
      return pl.solve(instances, round);
    });
    const { files, manifest } = pl.assemble(await pl.collect());
    const result = finishCorpus(pl, { write: true, force: opts.force, onStage: opts.onStage }, files, manifest as CorpusManifest);
    return { ...result, shards: count, episodes: { fromShards: fromRound1, solvedByMerge: solvedHere } };
  } finally {
    await pl.close();
  }
}
