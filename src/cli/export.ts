/**
 * `ehrgym export DIR --format openai|trl|axolotl|llamafactory [--rows trajectory|per-turn] --out DIR`
 */
import type { Command } from 'commander';
import { fromFactoryError } from './errors.js';
import { intFlag, outputPath } from './flags.js';
import type { TokenizerName } from '../factory/tokens.js';
import { exportCorpus } from '../factory/io.js';
import type { ExportFormat, RowMode } from '../factory/export.js';
import { exportPreferences, PREFERENCE_FORMATS, type PreferenceFormat } from '../factory/preference.js';
import { CliError } from './errors.js';
import { officialGrader, openBackend, openTaskSet, worldOfTaskSet } from '../eval/setup.js';
import { gradeOutput } from '../eval/run.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `--format dpo|kto`: preference rows from an eval run folder, every pair graded again on the run's world. */
async function exportPreferenceRows(dir: string, format: PreferenceFormat, o: { rows: string; out: string; force: boolean; json: boolean }): Promise<void> {
  if (o.rows !== 'trajectory') throw new CliError(`--rows: not used with --format ${format} (a row is one turn where two rollouts part)`);
  const summaryPath = join(dir, 'summary.json');
  if (!existsSync(summaryPath)) throw new CliError(`${dir}: not an eval run folder (summary.json is missing); --format ${format} reads eval runs`);
  let manifest: { apiBase?: string; taskSet?: { name?: string; path?: string } };
  try {
    manifest = JSON.parse(readFileSync(summaryPath, 'utf8')).manifest ?? {};
  } catch {
    throw new CliError(`${summaryPath}: not valid JSON`);
  }
  const apiBase = manifest.apiBase ?? OFFICIAL_API_BASE;
  let backend: Awaited<ReturnType<typeof openBackend>> | undefined;
  const sets = new Map<string, ReturnType<typeof openTaskSet>>();
  const setOf = (name: string) => {
    if (!sets.has(name)) sets.set(name, openTaskSet(name));
    return sets.get(name)!;
  };
  try {
    const s = await exportPreferences(
      { dir, format, out: o.out, force: o.force },
      {
        loadTasks: (name) => setOf(name).tasks,
        regrade: async (task, output) => {
          if (!backend)
            backend = await openBackend({ apiBase, ...worldOfTaskSet(setOf(manifest.taskSet?.path ?? manifest.taskSet?.name ?? 'medagentbench-v2'), {}) });
          return gradeOutput(officialGrader, task, output, { apiBase, fhir: backend.base });
        },
      },
    );
    if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    else {
      process.stdout.write(
        `exported ${dir} as ${format} to ${s.out}: ${s.pairs} pair(s) from ${s.tasks_with_both} task(s) with passing and failing rollouts → ${s.rows} rows; every pair graded again` +
          `${s.dropped.length ? `; ${s.dropped.length} pair(s) dropped (export.json says why)` : ''}\n`,
      );
    }
  } catch (e) {
    throw fromFactoryError(e);
  } finally {
    await backend?.close();
  }
}

export function register(program: Command): void {
  program
    .command('export')
    .description('convert a generated corpus to the row shapes a trainer documents (with a parity check)')
    .argument('<dir>', 'corpus folder written by `ehrgym generate` (dpo/kto: an eval run folder, e.g. made with --trials)')
    .requiredOption('--format <format>', 'openai | trl | axolotl | llamafactory | dpo | kto (TRL preference rows from an eval run)')
    .option('--rows <mode>', 'trajectory (one row per episode) | per-turn (one row per assistant turn)', 'trajectory')
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .option('--tokenizer <name>', 'token counts: qwen3 (exact; per-turn rows also pass the chat-template parity check) | estimate', 'qwen3')
    .option('--max-seq-len <n>', 'refuse the export when a trainer row is longer than this many tokens (lists them)')
    .option('--force', 'replace an output folder that holds something else', false)
    .option('--json', 'print the summary as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym export out/sft --format trl --out out/export/trl
  ehrgym export out/sft --format axolotl --rows per-turn --out out/export/axolotl
  ehrgym export ehrgym-demo/sft --format openai --out out/export/openai      # the demo's corpus
  ehrgym export out/sft-tools --format trl --rows per-turn --out out/export/trl-tools   # a tools corpus: tools on every row
  ehrgym export runs/qwen3-8b-k5 --format dpo --out out/export/dpo   # passing vs failing rollouts of the same task (eval --trials)
`,
    )
    .action(async (dir: string, o: { format: string; rows: string; out: string; force: boolean; json: boolean; tokenizer: string; maxSeqLen?: string }) => {
      outputPath('--out', o.out, 'dir');
      if ((PREFERENCE_FORMATS as readonly string[]).includes(o.format)) {
        await exportPreferenceRows(dir, o.format as PreferenceFormat, o);
        return;
      }
      const maxSeqLen = o.maxSeqLen === undefined ? undefined : intFlag('--max-seq-len', o.maxSeqLen, 1);
      try {
        const s = await exportCorpus({
          dir,
          format: o.format as ExportFormat,
          rows: o.rows as RowMode,
          out: o.out,
          force: o.force,
          tokenizer: o.tokenizer as TokenizerName,
          maxSeqLen,
        });
        if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
        else {
          const per = Object.entries(s.splits)
            .map(([k, v]) => `${k} ${v.canonical} rows → ${v.lines} lines`)
            .join(', ');
          process.stdout.write(`exported ${dir} as ${s.format} (${s.rows}) to ${s.out}: ${per}\n`);
          process.stdout.write(`round-trip and parity: ${s.parity.checked} rows checked, ${s.parity.failed} failed\n`);
          if (s.templateParity)
            process.stdout.write(
              `template parity (Qwen3 chat template vs the harness request): ${s.templateParity.checked} per-turn rows checked, ${s.templateParity.failed} failed\n`,
            );
          process.stdout.write(
            `tokens (${s.tokens.exact ? s.tokens.tokenizer : 'estimated'}): p99 ${s.tokens.p99}, max ${s.tokens.max}; sequence length ${s.tokens.max_seq_len}\n`,
          );
          process.stdout.write(`files: ${s.files.join(', ')}\n`);
        }
      } catch (e) {
        throw fromFactoryError(e);
      }
    });
}
