/**
 * QLoRA SFT configs for existing trainers (recipe in docs/factory.md, `ehrgym train-config`), launch commands for one
 * GPU and several, and the vLLM command that serves the adapter for `ehrgym eval` with thinking off.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { FactoryInputError } from './errors.js';
import { readIdentity } from './output.js';
import { sha256, stableStringify } from './canonical.js';
import { toYaml, type YamlValue } from './yaml.js';
import type { ExportFormat, RowMode } from './export.js';

export const TRAINERS = ['axolotl', 'trl', 'llamafactory'] as const;
export type Trainer = (typeof TRAINERS)[number];

/** The QLoRA recipe of docs/factory.md (Qwen3-32B, ~1.5k trajectories). */
export const RECIPE = {
  loraR: 32,
  loraAlpha: 64,
  loraDropout: 0.05,
  learningRate: 1e-4,
  epochs: 2,
  microBatch: 1,
  gradAccum: 16,
  warmupRatio: 0.05,
  maxGradNorm: 1.0,
  weightDecay: 0,
  seed: 42,
  adapterName: 'medagent-sft',
} as const;

export interface TrainConfigOptions {
  trainer: Trainer;
  model: string;
  /** Folder of the data: an `ehrgym export` folder (preferred) or a canonical corpus from `ehrgym generate`. */
  data: string;
  out: string;
  /** GPUs for the multi-GPU launch line (default 4). */
  gpus?: number;
}

export interface TrainConfigResult {
  files: Record<string, string>;
  /** Human-readable summary: the launch and serve commands. */
  commands: { singleGpu: string; multiGpu: string; deepspeed: string; serve: string; evaluate: string };
  sequenceLen: number;
  identity: string;
}

interface DataInfo {
  kind: 'sft-export' | 'sft-corpus';
  format: ExportFormat | null;
  rows: RowMode;
  splits: string[];
  p99Tokens: number;
  maxTokens: number;
  /** Counted by the model's tokenizer (`tokens.exact` in the manifest), else an estimate that needs a margin. */
  exactTokens: boolean;
  /** Rows of a tools corpus (`protocol: tools` in the manifest or export). */
  tools: boolean;
}

function readDataInfo(dir: string): DataInfo {
  const ident = readIdentity(dir);
  if (!existsSync(dir) || !ident) throw new FactoryInputError(`--data ${dir} is not a folder written by ehrgym generate or ehrgym export`);
  if (ident.kind === 'sft-export') {
    const m = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8')) as {
      format: ExportFormat;
      rows: RowMode;
      splits: string[];
      tokens: { p99: number; max: number; exact?: boolean };
      protocol?: string;
    };
    return {
      kind: 'sft-export',
      format: m.format,
      rows: m.rows,
      splits: m.splits,
      p99Tokens: m.tokens.p99,
      maxTokens: m.tokens.max,
      exactTokens: m.tokens.exact === true,
      tools: m.protocol === 'tools',
    };
  }
  if (ident.kind === 'sft-corpus') {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      splits: Record<string, unknown>;
      tokens: { all: { p99: number; max: number }; exact?: boolean };
      protocol?: string;
    };
    return {
      kind: 'sft-corpus',
      format: null,
      rows: 'trajectory',
      splits: Object.keys(m.splits),
      p99Tokens: m.tokens.all.p99,
      maxTokens: m.tokens.all.max,
      exactTokens: m.tokens.exact === true,
      tools: m.protocol === 'tools',
    };
  }
  throw new FactoryInputError(`--data ${dir} holds a ${ident.kind} folder, not a corpus or an export`);
}

/** ≥ max row length (never truncate: FINISH is the last turn), rounded up to a multiple of 2048, at least 8192. */
export function chooseSequenceLen(maxTokens: number, exact = false): number {
  return Math.max(8192, Math.ceil((maxTokens * (exact ? 1 : 1.15)) / 2048) * 2048);
}

/** The format each trainer reads; an `openai` export also works for axolotl (roles/content messages). */
const READS: Record<Trainer, ExportFormat[]> = {
  axolotl: ['axolotl', 'openai', 'trl'],
  trl: ['trl'],
  llamafactory: ['llamafactory'],
};

export function buildTrainConfig(opts: TrainConfigOptions): TrainConfigResult {
  const { trainer, model } = opts;
  if (!TRAINERS.includes(trainer)) throw new FactoryInputError(`--trainer ${String(trainer)} is not one of ${TRAINERS.join(', ')}`);
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(model) && !existsSync(model))
    throw new FactoryInputError(`--model ${model} is neither a hub id (org/name) nor an existing path`);
  const dataDir = resolve(opts.data);
  const info = readDataInfo(dataDir);
  if (info.kind === 'sft-export' && !READS[trainer].includes(info.format!)) {
    throw new FactoryInputError(`--data ${opts.data} is a ${info.format} export; ${trainer} needs \`ehrgym export --format ${READS[trainer][0]}\``);
  }
  // tools rows: axolotl reads its own export only (arguments and parameters as JSON strings, content "")
  if (info.tools && trainer === 'axolotl' && info.format !== 'axolotl')
    throw new FactoryInputError(
      `--data ${opts.data} holds tools rows${info.format ? ` exported as ${info.format}` : ''}; axolotl needs \`ehrgym export --format axolotl\``,
    );
  if (info.kind === 'sft-corpus' && trainer !== 'axolotl') {
    throw new FactoryInputError(
      `--data ${opts.data} is a canonical corpus; run \`ehrgym export ${opts.data} --format ${trainer} --out DIR\` first and pass that folder`,
    );
  }
  const outDir = resolve(opts.out);
  // paths inside the configs are relative to the config folder (the launch scripts cd there)
  const rel = (p: string) => {
    const r = relative(outDir, p);
    return r.startsWith('..') || r === '' ? r || '.' : `./${r}`;
  };
  const dataRel = rel(dataDir);
  const seq = chooseSequenceLen(info.maxTokens, info.exactTokens);
  const gpus = opts.gpus ?? 4;
  const perTurn = info.rows === 'per-turn';
  const adapterDir = `outputs/${RECIPE.adapterName}-${trainer}`;
  const files: Record<string, string> = {};
  let single = '';
  let multi = '';
  let ds = '';
  const header = (cmd: string): YamlValue =>
    ({
      '#1': `QLoRA SFT of ${model} on ${dataRel} (recipe: ehrgym docs/factory.md; thinking disabled)`,
      '#2': `launch from this folder: ${cmd}`,
      '#3': `max row length ≈ ${info.maxTokens} tokens (p99 ${info.p99Tokens}, ${info.exactTokens ? 'exact' : 'estimated, +15 % margin'}): sequence length ${seq}`,
    }) as YamlValue;

  if (trainer === 'axolotl') {
    const dsEntry = (split: string): Record<string, YamlValue> => ({
      path: `${dataRel}/${split}.jsonl`,
      ds_type: 'json',
      split: 'train',
      type: 'chat_template',
      field_messages: 'messages',
      message_property_mappings: { role: 'role', content: 'content' },
      roles_to_train: ['assistant'],
      train_on_eos: 'turn',
      ...(info.tools ? { field_tools: 'tools' } : {}),
      ...(perTurn ? { message_field_training: 'train' } : {}),
    });
    const cfg: Record<string, YamlValue> = {
      ...(header('axolotl train axolotl.yml') as Record<string, YamlValue>),
      base_model: model,
      chat_template: 'qwen3',
      chat_template_kwargs: { enable_thinking: false },
      datasets: [dsEntry('train')],
      ...(info.splits.includes('valid') ? { test_datasets: [dsEntry('valid')] } : { val_set_size: 0 }),
      dataset_prepared_path: `prepared/${RECIPE.adapterName}`,
      output_dir: adapterDir,
      adapter: 'qlora',
      load_in_4bit: true,
      bnb_config_kwargs: { bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, bnb_4bit_compute_dtype: 'bfloat16' },
      lora_r: RECIPE.loraR,
      lora_alpha: RECIPE.loraAlpha,
      lora_dropout: RECIPE.loraDropout,
      lora_target_linear: true,
      sequence_len: seq,
      sample_packing: false,
      micro_batch_size: RECIPE.microBatch,
      gradient_accumulation_steps: RECIPE.gradAccum,
      num_epochs: RECIPE.epochs,
      learning_rate: RECIPE.learningRate,
      lr_scheduler: 'cosine',
      warmup_ratio: RECIPE.warmupRatio,
      weight_decay: RECIPE.weightDecay,
      max_grad_norm: RECIPE.maxGradNorm,
      optimizer: 'paged_adamw_8bit',
      bf16: true,
      tf32: true,
      attn_implementation: 'flash_attention_2',
      gradient_checkpointing: true,
      gradient_checkpointing_kwargs: { use_reentrant: false },
      plugins: ['axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin'],
      logging_steps: 1,
      saves_per_epoch: 1,
      seed: RECIPE.seed,
    };
    files['axolotl.yml'] = toYaml(cfg);
    single = 'axolotl preprocess axolotl.yml --debug && axolotl train axolotl.yml';
    multi = `axolotl train axolotl.yml --launcher accelerate -- --num_processes ${gpus}`;
    files['zero3_bf16.json'] = JSON.stringify(deepspeedZero3(), null, 2) + '\n';
    ds = `axolotl train axolotl.yml --deepspeed zero3_bf16.json --launcher accelerate -- --num_processes ${gpus}`;
  } else if (trainer === 'trl') {
    const cfg: Record<string, YamlValue> = {
      ...(header('trl sft --config trl.yaml') as Record<string, YamlValue>),
      model_name_or_path: model,
      dtype: 'bfloat16',
      attn_implementation: 'flash_attention_2',
      datasets: [{ path: 'json', data_files: `${dataRel}/train.jsonl`, split: 'train' }],
      use_peft: true,
      load_in_4bit: true,
      bnb_4bit_quant_type: 'nf4',
      use_bnb_nested_quant: true,
      lora_r: RECIPE.loraR,
      lora_alpha: RECIPE.loraAlpha,
      lora_dropout: RECIPE.loraDropout,
      lora_target_modules: 'all-linear',
      ...(perTurn ? { '#4': 'prompt/completion rows: completion-only loss is the default; do not set assistant_only_loss' } : { assistant_only_loss: true }),
      ...(info.tools
        ? {
            '#5': 'tools rows: datasets\' JSON loader pads the tool schemas and call arguments of different shapes with nulls; load the rows with Dataset.from_list(rows, on_mixed_types="use_json") (datasets >= 4.7) as the TRL docs show',
          }
        : {}),
      max_length: seq,
      packing: false,
      per_device_train_batch_size: RECIPE.microBatch,
      gradient_accumulation_steps: RECIPE.gradAccum,
      num_train_epochs: RECIPE.epochs,
      learning_rate: RECIPE.learningRate,
      lr_scheduler_type: 'cosine',
      warmup_ratio: RECIPE.warmupRatio,
      weight_decay: RECIPE.weightDecay,
      max_grad_norm: RECIPE.maxGradNorm,
      gradient_checkpointing: true,
      gradient_checkpointing_kwargs: { use_reentrant: false },
      bf16: true,
      logging_steps: 1,
      save_strategy: 'epoch',
      output_dir: adapterDir,
      seed: RECIPE.seed,
      report_to: 'none',
    };
    files['trl.yaml'] = toYaml(cfg);
    single = 'trl sft --config trl.yaml';
    multi = `trl sft --config trl.yaml --accelerate_config multi_gpu --num_processes ${gpus}`;
    ds = `trl sft --config trl.yaml --accelerate_config zero3 --num_processes ${gpus} --bnb_4bit_quant_storage bfloat16`;
  } else {
    const cfg: Record<string, YamlValue> = {
      ...(header('llamafactory-cli train train.yaml') as Record<string, YamlValue>),
      model_name_or_path: model,
      quantization_bit: 4,
      quantization_method: 'bnb',
      double_quantization: true,
      stage: 'sft',
      do_train: true,
      finetuning_type: 'lora',
      lora_rank: RECIPE.loraR,
      lora_alpha: RECIPE.loraAlpha,
      lora_dropout: RECIPE.loraDropout,
      lora_target: 'all',
      dataset_dir: dataRel,
      dataset: 'medagent_sft',
      ...(info.splits.includes('valid') ? { eval_dataset: 'medagent_sft_valid' } : {}),
      template: 'qwen3',
      enable_thinking: false,
      ...(perTurn ? { mask_history: true } : {}),
      cutoff_len: seq,
      per_device_train_batch_size: RECIPE.microBatch,
      gradient_accumulation_steps: RECIPE.gradAccum,
      learning_rate: RECIPE.learningRate,
      num_train_epochs: RECIPE.epochs,
      lr_scheduler_type: 'cosine',
      warmup_ratio: RECIPE.warmupRatio,
      max_grad_norm: RECIPE.maxGradNorm,
      bf16: true,
      flash_attn: 'fa2',
      gradient_checkpointing: true,
      logging_steps: 1,
      save_strategy: 'epoch',
      output_dir: adapterDir,
      seed: RECIPE.seed,
    };
    files['train.yaml'] = toYaml(cfg);
    files['ds_z3_config.json'] = JSON.stringify(deepspeedZero3(), null, 2) + '\n';
    single = 'llamafactory-cli train train.yaml';
    multi = `FORCE_TORCHRUN=1 NPROC_PER_NODE=${gpus} llamafactory-cli train train.yaml`;
    ds = `FORCE_TORCHRUN=1 NPROC_PER_NODE=${gpus} llamafactory-cli train train.yaml deepspeed=ds_z3_config.json`;
  }
  const maxModelLen = Math.max(32768, seq);
  const serve = [
    `vllm serve ${model}`,
    '--host 127.0.0.1 --port 8000',
    '--enable-lora',
    `--lora-modules ${RECIPE.adapterName}=${adapterDir}`,
    `--max-lora-rank ${RECIPE.loraR}`,
    '--max-loras 2 --max-cpu-loras 4',
    `--default-chat-template-kwargs '{"enable_thinking": false}'`,
    `--max-model-len ${maxModelLen}`,
    '--generation-config vllm',
    '--tensor-parallel-size 2',
    // tools rows: the served model answers with tool calls (Qwen3 writes Hermes-style <tool_call> blocks)
    ...(info.tools ? ['--enable-auto-tool-choice --tool-call-parser hermes'] : []),
  ].join(' \\\n  ');
  const evaluate = `ehrgym eval --agent openai:${RECIPE.adapterName} --base-url http://127.0.0.1:8000/v1 --extra '{"chat_template_kwargs": {"enable_thinking": false}}' --tasks medagentbench-v2${info.tools ? ' --protocol tools' : ''} --concurrency 8 --out runs/${RECIPE.adapterName}`;
  const sh = (title: string, cmd: string) => `#!/usr/bin/env bash\n# ${title}\nset -euo pipefail\ncd "$(dirname "$0")"\n${cmd}\n`;
  files['train-1gpu.sh'] = sh(`QLoRA SFT on one GPU (${trainer})`, single);
  files[`train-${gpus}gpu.sh`] = sh(`QLoRA SFT on ${gpus} GPUs, data parallel (${trainer})`, multi);
  files[`train-${gpus}gpu-deepspeed.sh`] = sh(`QLoRA SFT on ${gpus} GPUs with DeepSpeed ZeRO-3 (small cards / long rows)`, ds);
  files['serve-vllm.sh'] = sh(
    'serve the adapter (bf16 base + LoRA) on an OpenAI-compatible endpoint, thinking off; TP=2 for 2×80 GB, drop --tensor-parallel-size on an H200',
    serve,
  );
  files['eval.sh'] = sh('evaluate the served adapter on MedAgentBench v2', evaluate);
  const commands = { singleGpu: single, multiGpu: multi, deepspeed: ds, serve, evaluate };
  files['README.md'] = [
    `# QLoRA SFT config: ${trainer}`,
    '',
    `Base model \`${model}\`, data \`${dataRel}\` (${info.kind}${info.format ? `, format ${info.format}` : ''}, ${info.rows} rows).`,
    `NF4 4-bit base with double quantization, bf16 compute, LoRA r=${RECIPE.loraR} α=${RECIPE.loraAlpha} dropout ${RECIPE.loraDropout} on all linear layers,`,
    `LR ${RECIPE.learningRate} cosine, warm-up ${RECIPE.warmupRatio * 100} %, ${RECIPE.epochs} epochs, effective batch ${RECIPE.microBatch * RECIPE.gradAccum}, sequence length ${seq},`,
    'assistant-only loss, thinking disabled (no `<think>` text in targets; served with `enable_thinking: false`).',
    '',
    '| Step | Command |',
    '|---|---|',
    `| train, 1 GPU | \`${single}\` |`,
    `| train, ${gpus} GPUs (DDP) | \`${multi}\` |`,
    `| train, ${gpus} GPUs (DeepSpeed ZeRO-3) | \`${ds}\` |`,
    `| serve | \`${serve.replace(/ \\\n {2}/g, ' ')}\` |`,
    `| evaluate | \`${evaluate}\` |`,
    '',
    'Effective batch stays 16: with N GPUs, divide `gradient_accumulation_steps` by N.',
    '',
  ].join('\n');
  const identity = sha256(stableStringify({ trainer, model, data: dataDir, gpus, files }));
  return { files, commands, sequenceLen: seq, identity };
}

function deepspeedZero3(): Record<string, unknown> {
  return {
    train_batch_size: 'auto',
    train_micro_batch_size_per_gpu: 'auto',
    gradient_accumulation_steps: 'auto',
    gradient_clipping: 'auto',
    zero_allow_untested_optimizer: true,
    bf16: { enabled: 'auto' },
    zero_optimization: {
      stage: 3,
      overlap_comm: true,
      contiguous_gradients: true,
      reduce_bucket_size: 'auto',
      stage3_prefetch_bucket_size: 'auto',
      stage3_param_persistence_threshold: 'auto',
      stage3_gather_16bit_weights_on_model_save: true,
    },
  };
}
