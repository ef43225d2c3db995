/**
 * Reading a canonical corpus folder (`ehrgym generate` output) and exporting it for a trainer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkRowShape, readJsonl, sha256, stableStringify, toJsonl } from './canonical.js';
import { FactoryFailure, FactoryInputError } from './errors.js';
import { EXPORT_FORMATS, ROW_MODES, exportRows, importRows, llamafactoryDatasetInfo, type ExportFormat, type RowMode } from './export.js';
import { readIdentity, writeFolderAtomic } from './output.js';
import { checkParity, checkTemplateParity, type ParityIssue } from './parity.js';
import { parseAction } from '../agent/parser.js';
import { lengthStats, sequenceAdvice, TOKENIZER_APPROXIMATION, TOKENIZER_NAMES, tokenCounter, type TokenCounter, type TokenizerName } from './tokens.js';
import { COUNT_RENDERING, COUNT_RENDERING_TOOLS } from './corpus.js';
import type { CorpusManifest } from './corpus.js';
import type { CanonicalRow, ToolsRow } from './types.js';
import type { FunctionTool } from '../protocol/tools.js';
import { checkToolsParity, checkToolsRowShape, rowActions, TOOLS_FILE, toolsFileText, toolsSha256 } from './tools-rows.js';
import { exportToolsRows, importToolsRows, llamafactoryToolsDatasetInfo, toolsConversationDiff } from './export-tools.js';
import { checkToolsTemplateParity } from './parity.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { taskDialect } from '../protocol/dialect.js';

export interface Corpus {
  dir: string;
  manifest: CorpusManifest;
  splits: Record<string, CanonicalRow[]>;
}

/** A tools corpus (`ehrgym generate --protocol tools`): its rows and the tool list they were made with. */
export interface ToolsCorpus {
  dir: string;
  manifest: CorpusManifest;
  splits: Record<string, ToolsRow[]>;
  tools: FunctionTool[];
}

/** A corpus of either protocol. */
export type AnyCorpus = { protocol: 'text'; corpus: Corpus } | { protocol: 'tools'; corpus: ToolsCorpus };

function readManifest(dir: string, flag: string): CorpusManifest {
  if (!existsSync(dir)) throw new FactoryInputError(`${flag} ${dir} does not exist`);
  const ident = readIdentity(dir);
  if (!ident || ident.kind !== 'sft-corpus') throw new FactoryInputError(`${flag} ${dir} is not a corpus written by ehrgym generate`);
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as CorpusManifest;
  } catch (e) {
    throw new FactoryInputError(`${join(dir, 'manifest.json')} is unreadable (${(e as Error).message})`);
  }
}

/** Load a corpus folder of either protocol (`manifest.protocol`), reading its manifest once. */
export function readAnyCorpus(dir: string, flag = 'DIR'): AnyCorpus {
  const manifest = readManifest(dir, flag);
  return manifest.protocol === 'tools'
    ? { protocol: 'tools', corpus: toolsCorpusOf(dir, flag, manifest) }
    : { protocol: 'text', corpus: textCorpusOf(dir, flag, manifest) };
}

/** Load a tools corpus folder: rows of the tools shape, and `tools.json` matching the manifest's hash. */
export function readToolsCorpus(dir: string, flag = 'DIR'): ToolsCorpus {
  return toolsCorpusOf(dir, flag, readManifest(dir, flag));
}

/** Load a text corpus folder; every problem is a FactoryInputError naming the folder or file. */
export function readCorpus(dir: string, flag = 'DIR'): Corpus {
  return textCorpusOf(dir, flag, readManifest(dir, flag));
}

function toolsCorpusOf(dir: string, flag: string, manifest: CorpusManifest): ToolsCorpus {
  if (manifest.protocol !== 'tools' || !manifest.tools) throw new FactoryInputError(`${flag} ${dir} is not a tools corpus (ehrgym generate --protocol tools)`);
  const toolsFile = join(dir, manifest.tools.file);
  let tools: FunctionTool[];
  try {
    tools = JSON.parse(readFileSync(toolsFile, 'utf8')) as FunctionTool[];
  } catch (e) {
    throw new FactoryInputError(`${toolsFile} is unreadable (${(e as Error).message})`);
  }
  if (!Array.isArray(tools) || toolsSha256(tools) !== manifest.tools.sha256)
    throw new FactoryInputError(`${toolsFile} does not match the manifest's tools sha256`);
  return { dir, manifest, splits: readSplits<ToolsRow>(dir, manifest, checkToolsRowShape), tools };
}

function textCorpusOf(dir: string, flag: string, manifest: CorpusManifest): Corpus {
  if (manifest.protocol === 'tools') throw new FactoryInputError(`${flag} ${dir} is a tools corpus (read it with readToolsCorpus)`);
  return { dir, manifest, splits: readSplits<CanonicalRow>(dir, manifest, checkRowShape) };
}

/** Every split file of a corpus, each row checked by `check` (a FactoryInputError naming the file and line). */
function readSplits<R>(dir: string, manifest: CorpusManifest, check: (row: unknown) => string | null): Record<string, R[]> {
  const splits: Record<string, R[]> = {};
  for (const [name, s] of Object.entries(manifest.splits)) {
    const file = join(dir, s.file);
    let rows: R[];
    try {
      rows = readJsonl<R>(file);
    } catch (e) {
      throw new FactoryInputError(`${file} is unreadable (${(e as Error).message})`);
    }
    rows.forEach((r, i) => {
      const why = check(r);
      if (why) throw new FactoryInputError(`${file}:${i + 1}: ${why}`);
    });
    splits[name] = rows;
  }
  return splits;
}

export interface ExportOptions {
  dir: string;
  format: ExportFormat;
  rows: RowMode;
  out: string;
  force?: boolean;
  /** Token counter (default `qwen3`: exact counts and, for per-turn rows, the template parity check). */
  tokenizer?: TokenizerName;
  /** Refuse the export when a trainer row is longer than this many tokens (listing them): trainers would truncate. */
  maxSeqLen?: number;
}

export interface ExportSummary {
  out: string;
  format: ExportFormat;
  rows: RowMode;
  splits: Record<string, { canonical: number; lines: number; sha256: string }>;
  parity: { checked: number; failed: number };
  /** Per-turn rows through the Qwen3 chat template against the harness (null when not run: trajectory rows or the estimate). */
  templateParity: { checked: number; failed: number } | null;
  tokens: { tokenizer: string; exact: boolean; max: number; p99: number; max_seq_len: number };
  roundTrip: { checked: number; failed: number };
  files: string[];
}

/** Files of an export folder (pure; used by `exportCorpus` and by tests that plant mismatches). */
export function buildExportFiles(
  corpus: Corpus,
  format: ExportFormat,
  mode: RowMode,
): { files: Record<string, string>; lines: Record<string, Record<string, unknown>[]>; metas: Record<string, CanonicalRow['meta'][]> } {
  const files: Record<string, string> = {};
  const lines: Record<string, Record<string, unknown>[]> = {};
  const metas: Record<string, CanonicalRow['meta'][]> = {};
  for (const [name, rows] of Object.entries(corpus.splits)) {
    const ex = exportRows(rows, format, mode);
    lines[name] = ex.lines;
    metas[name] = ex.metas;
    files[`${name}.jsonl`] = toJsonl(ex.lines);
    files[`${name}.meta.jsonl`] = toJsonl(ex.metas.map((m) => JSON.stringify(m)));
  }
  return { files, lines, metas };
}

/**
 * Check an export against its corpus: the trainer files parse back (through the inverse converter) to the canonical
 * rows byte for byte, and every conversation passes the parity check with each assistant turn parsing to the same
 * action as the canonical turn.
 */
export async function checkExport(
  corpus: Corpus,
  files: Record<string, string>,
  format: ExportFormat,
  mode: RowMode,
): Promise<{ issues: string[]; checked: number }> {
  const issues: string[] = [];
  let checked = 0;
  for (const [name, rows] of Object.entries(corpus.splits)) {
    const parse = (f: string) =>
      files[f]!.split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    let back: CanonicalRow[];
    try {
      back = importRows(parse(`${name}.jsonl`), parse(`${name}.meta.jsonl`) as unknown as CanonicalRow['meta'][], format, mode);
    } catch (e) {
      issues.push(`${name}: export does not parse back (${(e as Error).message})`);
      continue;
    }
    for (let i = 0; i < rows.length; i++) {
      checked++;
      const want = rows[i]!;
      const got = back[i]!;
      if (stableStringify(want) !== stableStringify(got)) {
        issues.push(`${name} row ${i + 1} (${want.meta.row_id}): exported conversation differs from the canonical row`);
        continue;
      }
      const expected = want.messages.filter((m) => m.role === 'assistant').map((m) => parseAction(m.content, { put: taskDialect(want.meta.task).put }));
      const p: ParityIssue[] = await checkParity(got.messages, got.meta.task, { expected });
      for (const x of p) issues.push(`${name} row ${i + 1} (${want.meta.row_id}) turn ${x.turn}: ${x.problem}`);
    }
  }
  return { issues, checked };
}

/** Files of a tools export folder: trainer lines, meta sidecars and `tools.json` (pure). */
export function buildToolsExportFiles(corpus: ToolsCorpus, format: ExportFormat, mode: RowMode): { files: Record<string, string> } {
  const files: Record<string, string> = {};
  for (const [name, rows] of Object.entries(corpus.splits)) {
    const ex = exportToolsRows(rows, corpus.tools, format, mode);
    files[`${name}.jsonl`] = toJsonl(ex.lines);
    files[`${name}.meta.jsonl`] = toJsonl(ex.metas.map((m) => JSON.stringify(m)));
  }
  files[TOOLS_FILE] = toolsFileText(corpus.tools);
  return { files };
}

/**
 * Check a tools export against its corpus: the trainer files parse back (through the inverse converter) to the
 * corpus's conversations (call arguments compared as the chat template prints them), metas and tools, and every
 * conversation passes the tools parity check with each call performing the canonical turn's action.
 */
export async function checkToolsExport(
  corpus: ToolsCorpus,
  files: Record<string, string>,
  format: ExportFormat,
  mode: RowMode,
): Promise<{ issues: string[]; checked: number }> {
  const issues: string[] = [];
  let checked = 0;
  for (const [name, rows] of Object.entries(corpus.splits)) {
    const lines = (f: string) => (files[f] ?? '').split('\n').filter((l) => l !== '');
    let back: ToolsRow[];
    try {
      const metas = lines(`${name}.meta.jsonl`).map((l) => JSON.parse(l) as ToolsRow['meta']);
      back = importToolsRows(lines(`${name}.jsonl`), metas, corpus.tools, format, mode);
    } catch (e) {
      issues.push(`${name}: export does not parse back (${(e as Error).message})`);
      continue;
    }
    for (let i = 0; i < rows.length; i++) {
      checked++;
      const want = rows[i]!;
      const got = back[i]!;
      const diff = toolsConversationDiff(got.messages, want.messages);
      if (diff || stableStringify(got.meta) !== stableStringify(want.meta)) {
        issues.push(`${name} row ${i + 1} (${want.meta.row_id}): exported conversation differs from the canonical row (${diff ?? 'meta'})`);
        continue;
      }
      const p = await checkToolsParity(got.messages, got.meta.task, {
        apiBase: OFFICIAL_API_BASE,
        expected: rowActions(want.messages, OFFICIAL_API_BASE, taskDialect(want.meta.task)),
      });
      for (const x of p) issues.push(`${name} row ${i + 1} (${want.meta.row_id}) turn ${x.turn}: ${x.problem}`);
    }
  }
  return { issues, checked };
}

/** Token length of every trainer row (per-turn: each prefix ending with its trained turn), with an id per row. */
export function trainerRowLengths(corpus: Corpus, mode: RowMode, counter: TokenCounter): Array<{ id: string; tokens: number }> {
  const out: Array<{ id: string; tokens: number }> = [];
  for (const rows of Object.values(corpus.splits))
    for (const r of rows) {
      if (mode === 'trajectory') out.push({ id: r.meta.row_id, tokens: counter.chat(r.messages) });
      else
        r.messages.forEach((m, t) => m.role === 'assistant' && out.push({ id: `${r.meta.row_id}#turn${t}`, tokens: counter.chat(r.messages.slice(0, t + 1)) }));
    }
  return out;
}

/** Token length of every trainer row of a tools corpus (per-turn: each prefix ending with its trained turn). */
export function toolsTrainerRowLengths(corpus: ToolsCorpus, mode: RowMode, counter: TokenCounter): Array<{ id: string; tokens: number }> {
  const out: Array<{ id: string; tokens: number }> = [];
  for (const rows of Object.values(corpus.splits))
    for (const r of rows) {
      if (mode === 'trajectory') out.push({ id: r.meta.row_id, tokens: counter.tools(r.messages, taskDialect(r.meta.task)) });
      else
        r.messages.forEach(
          (m, t) =>
            m.role === 'assistant' &&
            out.push({ id: `${r.meta.row_id}#turn${t}`, tokens: counter.tools(r.messages.slice(0, t + 1), taskDialect(r.meta.task)) }),
        );
    }
  return out;
}

export async function exportCorpus(opts: ExportOptions): Promise<ExportSummary> {
  if (!EXPORT_FORMATS.includes(opts.format)) throw new FactoryInputError(`--format ${String(opts.format)} is not one of ${EXPORT_FORMATS.join(', ')}`);
  if (!ROW_MODES.includes(opts.rows)) throw new FactoryInputError(`--rows ${String(opts.rows)} is not one of ${ROW_MODES.join(', ')}`);
  const tokName = opts.tokenizer ?? 'qwen3';
  if (!(TOKENIZER_NAMES as readonly string[]).includes(tokName))
    throw new FactoryInputError(`--tokenizer ${String(tokName)} is not one of ${TOKENIZER_NAMES.join(', ')}`);
  if (opts.maxSeqLen !== undefined && !(Number.isInteger(opts.maxSeqLen) && opts.maxSeqLen >= 1))
    throw new FactoryInputError(`--max-seq-len ${opts.maxSeqLen} must be a positive integer`);
  const any = readAnyCorpus(opts.dir);
  const corpus = any.corpus;
  const counter = await tokenCounter(tokName);
  const { files } = any.protocol === 'tools' ? buildToolsExportFiles(any.corpus, opts.format, opts.rows) : buildExportFiles(any.corpus, opts.format, opts.rows);
  const { issues, checked } =
    any.protocol === 'tools' ? await checkToolsExport(any.corpus, files, opts.format, opts.rows) : await checkExport(any.corpus, files, opts.format, opts.rows);
  if (issues.length) throw new FactoryFailure(`export parity check failed: ${issues.length} problem(s), first: ${issues[0]}`);
  let templateParity: ExportSummary['templateParity'] = null;
  let template: Record<string, unknown> = {
    checked: 0,
    skipped: opts.rows === 'per-turn' ? 'no exact tokenizer (--tokenizer estimate)' : 'trajectory rows (the check covers per-turn rows)',
  };
  if (opts.rows === 'per-turn' && counter.tokenizer) {
    const t =
      any.protocol === 'tools'
        ? checkToolsTemplateParity(any.corpus.splits, files, opts.format, counter.tokenizer, any.corpus.tools)
        : checkTemplateParity(any.corpus.splits, files, opts.format, counter.tokenizer);
    if (t.issues.length) throw new FactoryFailure(`export template parity check failed: ${t.issues.length} problem(s), first: ${t.issues[0]}`);
    templateParity = { checked: t.checked, failed: 0 };
    template = {
      checked: t.checked,
      failed: 0,
      tokenizer: counter.label,
      rendering:
        any.protocol === 'tools'
          ? "Qwen3 chat template with the row's tools, add_generation_prompt=true, enable_thinking=false, against the harness request of each turn (messages and tools as vLLM hands them to the template)"
          : 'Qwen3 chat template, add_generation_prompt=true, enable_thinking=false, against the harness request of each turn',
      prompt_tokens: t.promptTokens,
      trained_tokens: t.trainedTokens,
    };
  }
  const lens = any.protocol === 'tools' ? toolsTrainerRowLengths(any.corpus, opts.rows, counter) : trainerRowLengths(any.corpus, opts.rows, counter);
  const stats = lengthStats(lens.map((l) => l.tokens));
  if (opts.maxSeqLen !== undefined) {
    const over = lens.filter((l) => l.tokens > opts.maxSeqLen!);
    if (over.length)
      throw new FactoryFailure(
        `${over.length} trainer row(s) longer than --max-seq-len ${opts.maxSeqLen} (a trainer would truncate them): ${over
          .slice(0, 10)
          .map((l) => `${l.id} (${l.tokens})`)
          .join(', ')}${over.length > 10 ? ', …' : ''}`,
      );
  }
  const splitNames = Object.keys(corpus.splits);
  if (opts.format === 'llamafactory')
    files['dataset_info.json'] =
      JSON.stringify(any.protocol === 'tools' ? llamafactoryToolsDatasetInfo(splitNames) : llamafactoryDatasetInfo(splitNames), null, 2) + '\n';
  const splits: ExportSummary['splits'] = {};
  for (const name of splitNames) {
    const text = files[`${name}.jsonl`]!;
    splits[name] = { canonical: corpus.splits[name]!.length, lines: text.split('\n').length - 1, sha256: sha256(text) };
  }
  const advice = sequenceAdvice(stats);
  const manifest = {
    kind: 'sft-export',
    format: opts.format,
    rows: opts.rows,
    splits: splitNames,
    source: { corpus_id: corpus.manifest.corpus_id, command: corpus.manifest.command, files: corpus.manifest.splits },
    files: splits,
    tokens: {
      tokenizer: counter.label,
      exact: counter.exact,
      rendering: any.protocol === 'tools' ? COUNT_RENDERING_TOOLS : COUNT_RENDERING,
      ...(counter.exact ? {} : { approximation: TOKENIZER_APPROXIMATION }),
      unit: opts.rows === 'per-turn' ? 'per-turn trainer row (prompt + trained turn)' : 'trajectory row',
      ...stats,
      advice,
      ...(opts.maxSeqLen !== undefined ? { max_seq_len: opts.maxSeqLen, over_max_seq_len: 0 } : {}),
    },
    parity: { checked, failed: 0, option: parityOption(opts.format, opts.rows) },
    ...(any.protocol === 'tools'
      ? { protocol: 'tools', tools: { file: TOOLS_FILE, sha256: toolsSha256(any.corpus.tools), count: any.corpus.tools.length } }
      : {}),
    template_parity: template,
    meta_sidecar: '<split>.meta.jsonl: one line per canonical row (trainer files never carry meta)',
  };
  files['export.json'] = JSON.stringify(manifest, null, 2) + '\n';
  const id = sha256(stableStringify({ corpus: corpus.manifest.corpus_id, format: opts.format, rows: opts.rows }));
  writeFolderAtomic(opts.out, { kind: 'sft-export', id }, files, opts.force ?? false);
  return {
    out: opts.out,
    format: opts.format,
    rows: opts.rows,
    splits,
    parity: { checked, failed: 0 },
    templateParity,
    tokens: { tokenizer: counter.label, exact: counter.exact, max: stats.max, p99: stats.p99, max_seq_len: opts.maxSeqLen ?? advice.max_seq_len },
    roundTrip: { checked, failed: 0 },
    files: Object.keys(files).sort(),
  };
}

/** The train/inference parity option (docs/factory.md, "Train/inference parity") an export implies. */
export function parityOption(format: ExportFormat, mode: RowMode): string {
  if (mode === 'per-turn')
    return format === 'trl'
      ? 'A: per-turn prompt/completion, completion-only loss (exact)'
      : format === 'llamafactory'
        ? 'D: per-turn rows, mask_history'
        : 'per-turn rows, last assistant turn trained';
  if (format === 'trl') return 'C: trajectory rows, assistant_only_loss (patched template)';
  if (format === 'llamafactory') return 'D: template qwen3, enable_thinking false';
  return 'B: trajectory rows, stock qwen3 template';
}
