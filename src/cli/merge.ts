/**
 * `ehrgym merge DIR… --out DIR [--json]`: joins the shards of one `ehrgym eval … --shard i/N` run (run folders) or of
 * one `ehrgym generate … --shard i/N` corpus (corpus shards) into what the same command writes unsharded.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, fromFactoryError } from './errors.js';
import { outputPath } from './flags.js';
import { EvalError } from '../eval/run.js';
import { isRunFolder, mergeRunShards } from '../eval/merge.js';
import { formatSummary } from '../eval/format.js';
import { isCorpusShard, mergeCorpusShards, unfinishedShardFolder } from '../factory/shard.js';
import { readIdentity } from '../factory/output.js';
import { realDeps } from '../factory/deps.js';

type Kind = 'run' | 'corpus';
const KIND_NAME: Record<Kind, string> = { run: 'run folder (ehrgym eval --shard)', corpus: 'corpus shard (ehrgym generate --shard)' };

/** What `dir` holds; refuses anything that is neither kind, naming the folder. */
function kindOf(dir: string): Kind {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CliError(`${dir}: is a file, not a shard folder`);
  if (isRunFolder(dir)) return 'run';
  // a corpus shard killed while writing leaves only its temporary folder: the corpus reader says it did not finish
  if (isCorpusShard(dir) || unfinishedShardFolder(dir) !== undefined) return 'corpus';
  if (!existsSync(dir)) throw new CliError(`${dir}: no such folder`);
  if (readIdentity(dir)?.kind === 'sft-corpus') throw new CliError(`${dir}: a corpus, not a corpus shard (make shards with ehrgym generate … --shard i/N)`);
  throw new CliError(`${dir}: neither a run folder nor a corpus shard`);
}

function int(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim())) throw new CliError(`${flag} must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new CliError(`${flag} must be between ${min} and ${max}, got ${v}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('merge')
    .description('join the shards of one sharded eval run or generate corpus (--shard i/N) into the unsharded result')
    .argument('<dirs...>', 'the shard folders (every shard of the run or corpus, each once, in any order)')
    .requiredOption('--out <dir>', 'the merged run folder or corpus (absent or empty)')
    .option('--json', 'print the summary (runs) or the manifest (corpora) as JSON')
    .option('--concurrency <n>', 'corpora: episodes in flight for the rounds after the first', '8')
    .option('--workers <n>', 'corpora: worker threads for those episodes (0 = main thread only)', '1')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym eval --agent oracle --shard 0/4 --out runs/oracle-0    # … and 1/4, 2/4, 3/4 (0-based), anywhere
  ehrgym merge runs/oracle-0 runs/oracle-1 runs/oracle-2 runs/oracle-3 --out runs/oracle
  ehrgym generate --out out/sft-0 --shard 0/2 && ehrgym generate --out out/sft-1 --shard 1/2
  ehrgym merge out/sft-0 out/sft-1 --out out/sft
`,
    )
    .action(async (dirs: string[], f: { out: string; json?: boolean; concurrency: string; workers: string }) => {
      outputPath('--out', f.out, 'dir');
      const concurrency = int('--concurrency', f.concurrency, 1, 1024);
      const workers = int('--workers', f.workers, 0, 16);
      for (const d of dirs) if (resolve(d) === resolve(f.out)) throw new CliError(`--out ${f.out}: is one of the shards`);
      const kinds = dirs.map(kindOf);
      const mixed = kinds.findIndex((k) => k !== kinds[0]);
      if (mixed >= 0) {
        throw new CliError(`${dirs[mixed]}: a ${KIND_NAME[kinds[mixed]]}, while ${dirs[0]} is a ${KIND_NAME[kinds[0]]}; merge the shards of one kind`);
      }
      if (kinds[0] === 'run') {
        let r;
        try {
          r = mergeRunShards(dirs, f.out);
        } catch (err) {
          if (err instanceof EvalError) throw new CliError(err.message);
          throw err;
        }
        process.stdout.write(f.json ? JSON.stringify(r.summary, null, 2) + '\n' : `merged ${r.shards} shards\n${formatSummary(r.summary, f.out)}`);
        return;
      }
      try {
        const r = await mergeCorpusShards(dirs, { out: f.out, deps: realDeps(), concurrency, workers });
        const m = r.manifest;
        if (f.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        else {
          process.stdout.write(
            `merged ${r.shards} shards into ${f.out}: ${m.counts.total} rows (${Object.entries(m.counts.splits)
              .map(([k, v]) => `${k} ${v}`)
              .join(
                ', ',
              )}); ${r.episodes.fromShards} first-round episodes from the shards, ${r.episodes.solvedByMerge} of later rounds solved here\nrebuild: ${m.command}\n`,
          );
        }
      } catch (err) {
        throw fromFactoryError(err);
      }
    });
}
