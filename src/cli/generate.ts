/**
 * `ehrgym generate --out data/sft [--seed 1] [--size 1530] [--per-family N] [--world synthetic] [--collect FILE...]
 *   [--eval-set medagentbench-v2] [--valid-fraction F] [--augment paraphrase,variants] [--protocol text|tools] [--json]`
 */
import type { Command } from 'commander';
import { CliError, fromFactoryError } from './errors.js';
import { DEFAULT_PATIENTS, outputPath, shardFlag } from './flags.js';
import { defaultParams, generateCorpus } from '../factory/generate.js';
import { realDeps } from '../factory/deps.js';
import { generateShard } from '../factory/shard.js';
import { formatShard } from '../eval/shard.js';
import type { TokenizerName } from '../factory/tokens.js';
import { suiteFamilies, suiteNames } from '../tasks/registry.js';

function int(flag: string, v: string | undefined): number | null {
  if (v === undefined) return null;
  if (!/^-?\d+$/.test(v.trim())) throw new CliError(`${flag} ${v} is not an integer`);
  return Number(v);
}

function list(v: string | undefined): string[] {
  return v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('build a verified, leak-free SFT corpus: synthesize tasks, solve them over HTTP with the expert solvers, grade, filter')
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .option('--seed <n>', 'seed for the world and the task draws', '1')
    .option('--size <n>', 'expert rows (split evenly over the families; remainder to action families first)', '1530')
    .option('--per-family <n>', 'expert rows per family (instead of --size)')
    .option(
      '--tasks <set>',
      'task set: medagentbench (the ten families, default) | ehrgym-clinical (the clinical suite on its clinical world: train patients, paraphrased instructions)',
      'medagentbench',
    )
    .option('--families <list>', 'comma-separated families (default all of the task set)')
    .option('--world <name>', 'world of the training patients: synthetic | medagentbench (non-evaluation patients only)', 'synthetic')
    .option('--patients <n>', `synthetic cohort size (default ${DEFAULT_PATIENTS}, the largest synthetic world)`)
    .option('--collect <files...>', 'runs.jsonl files of earlier `ehrgym eval` runs to merge (completed + passing episodes only)')
    .option(
      '--eval-set <name>',
      'evaluation task set the pollution filter protects (default medagentbench-v2; with --tasks ehrgym-clinical its frozen test split)',
    )
    .option('--valid-fraction <f>', 'share of rows held out in valid.jsonl (by family × patient)', '0')
    .option('--augment <list>', 'paraphrase,variants (off by default; marked in row meta)')
    .option('--balance <mode>', 'balanced (equal branch quotas per family) | natural', 'balanced')
    .option('--max-tokens <n>', 'drop rows longer than this many tokens (chat template included); trainers must never truncate', '32768')
    .option('--tokenizer <name>', 'token counts: qwen3 (exact, Qwen3 tokenizer + chat template) | estimate (no tokenizer)', 'qwen3')
    .option('--protocol <protocol>', 'text: the official text protocol | tools: OpenAI function calling (tool-call transcripts, live POSTs)', 'text')
    .option('--concurrency <n>', 'episodes in flight', '8')
    .option('--workers <n>', 'worker threads for expert episodes and grading (0 = main thread only)', '1')
    .option(
      '--shard <i/N>',
      'solve only shard i of N (0-based: 0/4 … 3/4) of the expert episodes, keyed by task; writes the shard results, which ehrgym merge turns into the corpus',
    )
    .option('--force', 'replace an output folder that holds a different corpus', false)
    .option('--json', 'print the manifest as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym generate --out out/sft                                   # 1,530 rows, seed 1 (a few minutes)
  ehrgym generate --out out/sft-small --per-family 4 --patients 100   # 40 rows, under a minute
  ehrgym generate --out out/sft --collect runs/qwen3-8b/runs.jsonl --valid-fraction 0.1
  ehrgym generate --out out/sft-tools --protocol tools --per-family 4 --patients 100   # tool-call transcripts
  ehrgym generate --out out/sft-clinical --tasks ehrgym-clinical --per-family 20   # the clinical suite's train split
  ehrgym generate --out out/sft-0 --shard 0/4 && …   # shard 0 of 4 (0-based); then:
  ehrgym merge out/sft-0 out/sft-1 out/sft-2 out/sft-3 --out out/sft
`,
    )
    .action(async (o: Record<string, string | boolean | string[] | undefined>) => {
      outputPath('--out', o.out as string, 'dir');
      const shard = shardFlag('--shard', o.shard as string | undefined);
      try {
        const vf = Number(o.validFraction);
        if (!Number.isFinite(vf)) throw new CliError(`--valid-fraction ${String(o.validFraction)} is not a number`);
        const fams = list(o.families as string | undefined);
        const tasks = o.tasks as string;
        if (tasks !== 'medagentbench' && !suiteNames().includes(tasks))
          throw new CliError(`--tasks ${tasks} is not a task set the factory builds (medagentbench, ${suiteNames().join(', ')})`);
        const suite = tasks === 'medagentbench' ? undefined : tasks;
        const params = defaultParams({
          out: o.out as string,
          seed: int('--seed', o.seed as string)!,
          size: int('--size', o.size as string)!,
          perFamily: int('--per-family', o.perFamily as string | undefined),
          ...(fams.length ? { families: fams } : suite ? { families: suiteFamilies(suite).map((f) => f.id) } : {}),
          ...(suite ? { tasks: suite } : {}),
          world: o.world as string,
          patients: int('--patients', o.patients as string | undefined),
          collect: (o.collect as string[] | undefined) ?? [],
          evalSet: (o.evalSet as string | undefined) ?? suite ?? 'medagentbench-v2',
          validFraction: vf,
          augment: list(o.augment as string | undefined),
          balance: o.balance as string,
          maxTokens: int('--max-tokens', o.maxTokens as string)!,
          tokenizer: o.tokenizer as TokenizerName,
          ...(o.protocol !== 'text' ? { protocol: o.protocol as 'tools' } : {}),
        });
        const concurrency = int('--concurrency', o.concurrency as string)!;
        const workers = int('--workers', o.workers as string)!;
        if (workers < 0 || workers > 16) throw new CliError(`--workers ${workers} must be between 0 and 16`);
        if (concurrency < 1) throw new CliError(`--concurrency ${concurrency} must be ≥ 1`);
        const t0 = performance.now();
        if (shard) {
          const r = await generateShard({
            params,
            deps: realDeps(),
            force: o.force === true,
            concurrency,
            workers,
            shard,
            onStage: o.json || !process.stderr.isTTY ? undefined : (s) => process.stderr.write(`generate: ${s}\n`),
          });
          const m = r.manifest;
          if (o.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
          else {
            process.stdout.write(
              `wrote ${params.out}: shard ${formatShard(shard)} of corpus ${m.corpus_id.slice(0, 12)}: ${m.round1.solved_here} of ${m.round1.instances} first-round episodes (${m.round1.tasks_here} of ${m.round1.tasks} tasks) in ${((performance.now() - t0) / 1000).toFixed(1)} s; join the ${shard.count} shards with ehrgym merge DIR… --out DIR\n`,
            );
          }
          return;
        }
        const r = await generateCorpus({
          params,
          deps: realDeps(),
          force: o.force === true,
          concurrency,
          workers,
          onStage: o.json || !process.stderr.isTTY ? undefined : (s) => process.stderr.write(`generate: ${s}\n`),
        });
        const m = r.manifest;
        if (o.json) {
          process.stdout.write(JSON.stringify(m, null, 2) + '\n');
          return;
        }
        const w = (s: string) => process.stdout.write(s + '\n');
        w(
          `wrote ${params.out}: ${m.counts.total} rows (${Object.entries(m.counts.splits)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        w(
          `pipeline: ${m.pipeline.synthesized} synthesized, ${m.pipeline.passed} passed the grader, ${m.pipeline.collected_kept}/${m.pipeline.collected_read} collected kept, ${m.pipeline.deduplicated} after dedup, ${m.pipeline.polluted} polluted, ${m.pipeline.kept} kept`,
        );
        for (const [fam, f] of Object.entries(m.counts.per_family))
          w(
            `  ${fam.padEnd(7)} ${String(f.total).padStart(5)}  ${Object.entries(f.branches)
              .map(([b, n]) => `${b} ${n}`)
              .join(', ')}`,
          );
        w(
          `pollution (${m.eval_set.name}): ${
            Object.entries(m.pollution.reasons)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') || 'none'
          }; parity: ${m.parity.checked} checked, ${m.parity.failed} failed`,
        );
        w(`tokens (${m.tokens.exact ? m.tokens.tokenizer : 'estimated'}): p50 ${m.tokens.all.p50}, p99 ${m.tokens.all.p99}, max ${m.tokens.all.max}`);
        w(`rebuild: ${m.command}`);
      } catch (e) {
        throw fromFactoryError(e);
      }
    });
}
