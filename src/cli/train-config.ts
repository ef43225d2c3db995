/**
 * `ehrgym train-config --trainer axolotl|trl|llamafactory --model Qwen/Qwen3-32B --data DIR --out DIR`
 */
import type { Command } from 'commander';
import { fromFactoryError } from './errors.js';
import { outputPath } from './flags.js';
import { buildTrainConfig, TRAINERS, type Trainer } from '../factory/train-config.js';
import { writeFolderAtomic } from '../factory/output.js';
import { FactoryInputError } from '../factory/errors.js';

export function register(program: Command): void {
  program
    .command('train-config')
    .description('write a QLoRA SFT config, launch commands (1 GPU, several) and the vLLM serve command')
    .requiredOption('--trainer <name>', TRAINERS.join(' | '))
    .option('--model <id>', 'base model (hub id or path)', 'Qwen/Qwen3-32B')
    .requiredOption('--data <dir>', 'folder written by `ehrgym export` (or a corpus, for axolotl)')
    .requiredOption('--out <dir>', 'output folder for the config files')
    .option('--gpus <n>', 'GPUs for the multi-GPU launch line', '4')
    .option('--force', 'replace an output folder that holds something else', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym train-config --trainer trl --model Qwen/Qwen3-32B --data out/export/trl --out out/train/trl
  ehrgym train-config --trainer axolotl --model Qwen/Qwen3-8B --data out/sft --out out/train/axolotl --gpus 8
`,
    )
    .action((o: { trainer: string; model: string; data: string; out: string; gpus: string; force: boolean }) => {
      outputPath('--out', o.out, 'dir');
      try {
        const gpus = Number(o.gpus);
        if (!Number.isInteger(gpus) || gpus < 2) throw new FactoryInputError(`--gpus ${o.gpus} must be an integer ≥ 2`);
        const r = buildTrainConfig({ trainer: o.trainer as Trainer, model: o.model, data: o.data, out: o.out, gpus });
        writeFolderAtomic(o.out, { kind: 'train-config', id: r.identity }, r.files, o.force);
        const w = (s: string) => process.stdout.write(s + '\n');
        w(`wrote ${Object.keys(r.files).sort().join(', ')} to ${o.out} (sequence length ${r.sequenceLen})`);
        w(`train, 1 GPU:        ${r.commands.singleGpu}`);
        w(`train, ${gpus} GPUs:       ${r.commands.multiGpu}`);
        w(`train, DeepSpeed:    ${r.commands.deepspeed}`);
        w(`serve (vLLM):\n  ${r.commands.serve}`);
        w(`evaluate:            ${r.commands.evaluate}`);
      } catch (e) {
        throw fromFactoryError(e);
      }
    });
}
