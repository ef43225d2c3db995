/**
 * `ehrgym generate`: synthesize → solve over HTTP → grade → parity → dedup → pollution → length → collect → write.
 *
 * Runs in rounds until every (family, branch) quota is met or the training pool is exhausted:
 * 1. Synthesize: each family's generator over the world's training patients (world patients minus every evaluation
 *    MRN), branch by branch, official templates; optional paraphrase / solution-path augmentation.
 * 2. Solve: the family's expert policy plays the agent in the official episode loop (`runEpisode`) against a real
 *    loopback FHIR server over HTTP, each episode in its own sandbox session (as `ehrgym eval` does).
 * 3. Verify: the family's grader (the evaluation grader); failures are dropped with the failing check as reason.
 *    Every kept row passes the parity check (harness parser + GET replies recomputed in-process in the same session).
 * 4. Deduplicate by normalized-conversation hash; drop rows polluted by the evaluation set or over --max-tokens.
 * Then collected rollouts (`--collect`: completed + passing only) go through the same filters, the per-family quotas
 * are taken, rows are split by task key, and the folder is written atomically.
 *
 * Stages (`openPipeline`): synthesize → solve → filter, in rounds (`runRounds`), then collect → assemble; `finishCorpus`
 * writes. A shard (`generateShard`, src/factory/shard.ts) solves its slice of the first round; `mergeCorpusShards`
 * runs the same stages with that round's results read from the shards.
 */
import { OFFICIAL_API_BASE } from '../fhir/types.js';
import { startFhirServer } from '../fhir/server.js';
import { httpTransport, inProcessGraderAccess, inProcessTransport } from '../fhir/client.js';
import { runEpisode } from '../agent/loop.js';
import { PolicyAgent } from '../agent/backends/scripted.js';
import { parseAction } from '../agent/parser.js';
import { functionsSha256, promptTemplateSha256 } from '../agent/prompt.js';
import { rngFor } from '../worlds/prng.js';
import { VERSION } from '../version.js';
import { contentHash, stableStringify } from './canonical.js';
import { collectRows, readCollectFile, type CollectSource } from './collect.js';
import { assembleCorpusFiles, corpusIdentity, splitRows, type CorpusManifest, type GenerateParams } from './corpus.js';
import type { FactoryDeps, LoadedWorld } from './deps.js';
import { FactoryFailure, FactoryInputError } from './errors.js';
import { checkOutputFolder, writeFolderAtomic } from './output.js';
import { paraphraseTask } from './paraphrase.js';
import { boundaryTags, branchHints, remainderOrder } from './hints.js';
import { exceedsTokens, TOKENIZER_NAMES, tokenCounter, type TokenCounter } from './tokens.js';
import { checkParity } from './parity.js';
import { retrying } from './retry.js';
import { FactoryWorkers } from './workers.js';
import { buildEvalIndex, pollutionReasons } from './pollution.js';
import { CORPUS_PROTOCOLS, isToolsRow, type CanonicalRow, type CorpusRow, type DropRecord, type ToolsMessage } from './types.js';
import { checkToolsParity, orderedMessage, textHistory, textView, toolsContentHash } from './tools-rows.js';
import { directToolEnvironment, runToolsEpisode } from '../agent/tools-loop.js';
import { defaultJsonLoads, executeAction } from '../agent/loop.js';
import { parseAction as parseCanonical } from '../protocol/text.js';
import type { Action } from '../protocol/action.js';
import { taskDialect } from '../protocol/dialect.js';
import { suiteNames } from '../tasks/registry.js';
import { trainParaphrase } from '../tasks/suite/splits.js';
import { rowTokens } from './tokens.js';
import type { FhirTransport } from '../fhir/types.js';
import type { GeneratedTask, TaskFamily, TaskOutput } from '../tasks/types.js';

export const AUGMENTATIONS = ['paraphrase', 'variants'] as const;
export const BALANCE_MODES = ['balanced', 'natural'] as const;

export interface GenerateRunOptions {
  params: GenerateParams;
  deps: FactoryDeps;
  force?: boolean;
  /** Episodes in flight at once (default 8). 1 = one solve at a time. */
  concurrency?: number;
  /**
   * Worker threads for episodes and grading (default 0 = everything on the main thread). The main thread keeps the
   * loopback server, the generators, the parity checks and the assembly. The output does not depend on it.
   */
  workers?: number;
  /** Write the folder (default true). */
  write?: boolean;
  /** Progress lines (stage names). */
  onStage?: (stage: string) => void;
}

export interface GenerateResult {
  manifest: CorpusManifest;
  files: Record<string, string>;
  drops: DropRecord[];
  timings: Record<string, number>;
}

export interface Instance {
  gen: GeneratedTask;
  family: TaskFamily;
  variant: string;
  augmentation: string[];
}

export function defaultParams(over: Partial<GenerateParams> = {}): GenerateParams {
  return {
    seed: 1,
    size: 1530,
    perFamily: null,
    families: remainderOrder().sort((a, b) => Number(a.slice(4)) - Number(b.slice(4))),
    world: 'synthetic',
    patients: null,
    collect: [],
    evalSet: 'medagentbench-v2',
    validFraction: 0,
    augment: [],
    balance: 'balanced',
    maxTokens: 32768,
    tokenizer: 'qwen3',
    out: 'data/sft',
    ...over,
  };
}

/** Per-family quotas: `perFamily` each, or `size` split evenly with the remainder to action families first. */
export function familyQuotas(families: string[], size: number, perFamily: number | null): Map<string, number> {
  const q = new Map<string, number>();
  if (perFamily !== null) {
    for (const f of families) q.set(f, perFamily);
    return q;
  }
  const base = Math.floor(size / families.length);
  let rem = size - base * families.length;
  for (const f of families) q.set(f, base);
  const remainder = remainderOrder();
  const order = [...remainder.filter((f) => families.includes(f)), ...families.filter((f) => !remainder.includes(f))];
  for (const f of order) {
    if (rem <= 0) break;
    q.set(f, q.get(f)! + 1);
    rem--;
  }
  return q;
}

/** Split a quota evenly over branches (remainder to the first branches). */
export function branchQuotas(branches: readonly string[], quota: number): Map<string, number> {
  const m = new Map<string, number>();
  const base = Math.floor(quota / branches.length);
  branches.forEach((b, i) => m.set(b, base + (i < quota - base * branches.length ? 1 : 0)));
  return m;
}

/**
 * The solution path of base rows: the one with short observations where the family has it — `sorted`
 * (`_sort=-date&_count=1`, as the hand-off recommends) or `window` (`date=ge` the 24 h cutoff) — else the family's
 * default. Other variants are augmentation (`--augment variants`).
 */
export function primaryVariant(family: TaskFamily): string {
  if (family.factory.primaryVariant && family.variants.includes(family.factory.primaryVariant)) return family.factory.primaryVariant;
  for (const v of ['sorted', 'window']) if (family.variants.includes(v)) return v;
  return family.variants[0] ?? 'default';
}

function validate(p: GenerateParams, deps: FactoryDeps): Map<string, TaskFamily> {
  if (p.tasks !== undefined) {
    if (!suiteNames().includes(p.tasks))
      throw new FactoryInputError(`--tasks ${p.tasks} is not a task set the factory builds (medagentbench, ${suiteNames().join(', ')})`);
    if (p.world !== 'synthetic') throw new FactoryInputError(`--world ${p.world}: the ${p.tasks} tasks live on their own clinical world (drop --world)`);
    if (p.patients !== null)
      throw new FactoryInputError(`--patients ${p.patients}: the ${p.tasks} tasks use their clinical world's train patients (drop --patients)`);
    if (p.collect.length > 0) throw new FactoryInputError(`--collect: collected runs are merged into MedAgentBench corpora only (not with --tasks ${p.tasks})`);
  }
  const fams = new Map(deps.families(p.tasks).map((f) => [f.id as string, f]));
  for (const f of p.families) if (!fams.has(f)) throw new FactoryInputError(`--families: unknown family ${f} (known: ${[...fams.keys()].join(', ')})`);
  if (new Set(p.families).size !== p.families.length) throw new FactoryInputError('--families: a family is listed twice');
  if (p.perFamily !== null && (!Number.isInteger(p.perFamily) || p.perFamily < 1))
    throw new FactoryInputError(`--per-family ${p.perFamily} must be a positive integer`);
  if (!Number.isInteger(p.size) || p.size < 0) throw new FactoryInputError(`--size ${p.size} must be a non-negative integer`);
  if (!Number.isInteger(p.seed)) throw new FactoryInputError(`--seed ${p.seed} must be an integer`);
  if (!(p.validFraction >= 0 && p.validFraction <= 0.5)) throw new FactoryInputError(`--valid-fraction ${p.validFraction} must be between 0 and 0.5`);
  for (const a of p.augment)
    if (!(AUGMENTATIONS as readonly string[]).includes(a))
      throw new FactoryInputError(`--augment: unknown augmentation ${a} (known: ${AUGMENTATIONS.join(', ')})`);
  if (!(BALANCE_MODES as readonly string[]).includes(p.balance))
    throw new FactoryInputError(`--balance ${p.balance} is not one of ${BALANCE_MODES.join(', ')}`);
  if (!(TOKENIZER_NAMES as readonly string[]).includes(p.tokenizer))
    throw new FactoryInputError(`--tokenizer ${String(p.tokenizer)} is not one of ${TOKENIZER_NAMES.join(', ')}`);
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1024) throw new FactoryInputError(`--max-tokens ${p.maxTokens} must be an integer ≥ 1024`);
  if (p.patients !== null && (!Number.isInteger(p.patients) || p.patients < 1))
    throw new FactoryInputError(`--patients ${p.patients} must be a positive integer`);
  if (p.protocol !== undefined && !(CORPUS_PROTOCOLS as readonly string[]).includes(p.protocol))
    throw new FactoryInputError(
      `--protocol ${String(p.protocol)} is not one of ${CORPUS_PROTOCOLS.join(', ')}${String(p.protocol) === 'mcp' ? ' (an MCP episode is the tools transcript: use --protocol tools)' : ''}`,
    );
  if (p.protocol === 'tools' && p.collect.length > 0)
    throw new FactoryInputError('--collect: collected runs are merged into text corpora only (not with --protocol tools)');
  return fams;
}

/** The sandbox session of an expert episode (deterministic; recorded in the row so `verify` can replay it). */
export function episodeSession(seed: number, taskId: string, variant: string, augmentation: string[]): string {
  const tag = augmentation.includes('paraphrase') ? '-p' : '';
  return `sft-s${seed}-${taskId}-${variant}${tag}`.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
}

/** Run `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

function firstFailure(checks: { name: string; pass: boolean }[], exception?: string): string {
  if (exception) return `exception: ${exception.split('\n')[0]}`;
  const f = checks.find((c) => !c.pass);
  return f ? `check failed: ${f.name}` : 'incorrect';
}

/** What solving one instance gave: a row that passed the grader and the parity checks, or why it was dropped. */
export interface SolveResult {
  solved?: boolean;
  drop?: DropRecord;
  row?: CorpusRow;
}

/** What a round's synthesis drew; `progressed`: a branch was found exhausted (its deficit moves on next round). */
export interface SynthesizedRound {
  instances: Instance[];
  progressed: boolean;
}

/**
 * The factory's stages over one world, task pool and evaluation index, sharing the pipeline's state (quotas, rows
 * accepted so far, drops): synthesize (a round's instances) → solve (expert episodes, grader, parity) → filter (dedup,
 * pollution, length; accepts rows) → collect (`--collect` rollouts) → assemble (quotas, splits, manifest, card).
 * `generateCorpus` runs them in order; a shard (`generateShard`) runs synthesize and solve over its slice of round 1;
 * `mergeCorpusShards` runs the rest with round 1's results read from the shards.
 */
export interface GeneratePipeline {
  params: GenerateParams;
  /** The corpus identity (`corpusIdentity`: parameters and collected files, not the output path). */
  corpusId: string;
  timings: Record<string, number>;
  /** Every instance or row not kept so far, and why (drops.jsonl). */
  drops: DropRecord[];
  /** Round `round` (0-based) of synthesis: draws what the quotas still miss. */
  synthesize(round: number): Promise<SynthesizedRound>;
  /** Solves instances (concurrently; results keep the input order). */
  solve(instances: Instance[], round: number): Promise<SolveResult[]>;
  /** Counts, filters and accepts a round's results, in their order. */
  filter(results: SolveResult[], round: number): void;
  /** Collected rollouts that pass the parity check and the filters. */
  collect(): Promise<{ rows: CanonicalRow[]; read: number }>;
  /** The corpus files and manifest from everything accepted. */
  assemble(collected: { rows: CanonicalRow[]; read: number }): { files: Record<string, string>; manifest: CorpusManifest };
  close(): Promise<void>;
}

/** The most synthesis rounds a corpus takes (later rounds draw only what earlier rounds left unfilled). */
export const MAX_ROUNDS = 8;

/**
 * Opens the pipeline: validates the parameters, reads the collected files, names the corpus (`checkOut` sees its
 * identity before any work), builds the evaluation index, loads the tokenizer (`needTokenizer`) and the world, and
 * starts the loopback FHIR server.
 */
export async function openPipeline(
  opts: GenerateRunOptions,
  { needTokenizer = true, checkOut = () => {} }: { needTokenizer?: boolean; checkOut?: (corpusId: string) => void } = {},
): Promise<GeneratePipeline> {
  const { params: p, deps } = opts;
  const stage = opts.onStage ?? (() => {});
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = Math.round(now - t);
    t = now;
  };
  const fams = validate(p, deps);
  // ---- inputs that determine the corpus identity: collect files are read before any work
  const sources: CollectSource[] = p.collect.map((f) => readCollectFile(f, (name) => deps.loadTaskSet(name).cases));
  const corpusId = corpusIdentity(
    p,
    sources.map((s) => s.sha256),
  );
  checkOut(corpusId);

  // ---- evaluation index
  let evalSet: ReturnType<FactoryDeps['loadTaskSet']>;
  try {
    evalSet = deps.loadTaskSet(p.evalSet);
  } catch (e) {
    throw new FactoryInputError(`--eval-set ${p.evalSet} cannot be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  const evalMrns = new Set([...deps.evaluationMrns(), ...evalSet.cases.map((c) => c.eval_MRN).filter((m): m is string => !!m)]);
  const evalPeople = deps.evaluationPatients(evalMrns);
  const index = buildEvalIndex(evalSet.name, evalSet.cases, evalPeople);
  lap('eval-index');
  // ---- token counter (the Qwen3 tokenizer loads once per process; a shard, which does not filter, needs none)
  let counter: TokenCounter | undefined;
  if (needTokenizer) {
    try {
      counter = await tokenCounter(p.tokenizer);
    } catch (e) {
      throw new FactoryInputError(
        `--tokenizer ${p.tokenizer}: the tokenizer cannot be loaded (${(e as Error).message.split('\n')[0]}); use --tokenizer estimate`,
      );
    }
    lap('tokenizer');
  }
  const tokens = (): TokenCounter => {
    if (!counter) throw new Error('the token counter was not loaded');
    return counter;
  };

  // ---- world + loopback server
  stage('world');
  let world: LoadedWorld;
  try {
    world = await deps.loadWorld(p.world, p.seed, p.patients, p.tasks);
  } catch (e) {
    throw new FactoryInputError(`--world ${p.world} cannot be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  const training = world.mrns.filter((m) => !evalMrns.has(m));
  const trainingSet = new Set(training);
  lap('world');
  const server = await startFhirServer(world.store, { port: 0, trustForwarded: true });
  const workerCount = Math.max(0, Math.floor(opts.workers ?? 0));
  const workers = workerCount > 0 ? new FactoryWorkers(workerCount, server.url) : null;
  const drops: DropRecord[] = [];
  let synthesized = 0;
  let solved = 0;
  let passed = 0;
  const worldMeta = {
    name: world.name,
    seed: world.seed,
    patients: world.patients,
    fingerprint: world.fingerprint,
    ...(world.suite !== undefined ? { suite: world.suite } : {}),
  };
  const local: FhirTransport = inProcessTransport(server.app);
  const remoteFor = (session: string): FhirTransport => retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: server.url }, session }));
  const access = { ...inProcessGraderAccess(server.app, world.store, OFFICIAL_API_BASE), fhir: local };
  const tools = p.protocol === 'tools';
  const solveOne = async (inst: Instance, i: number): Promise<{ solved?: boolean; drop?: DropRecord; row?: CorpusRow }> => {
    const { gen, family, variant } = inst;
    const agent = new PolicyAgent(`expert:${family.id}:${variant}`, (task, history) => family.solve(task, history, { apiBase: OFFICIAL_API_BASE, variant }));
    // every episode runs in its own sandbox session, as in `ehrgym eval` (searchset ids depend on the session)
    const session = episodeSession(p.seed, gen.task.id, variant, inst.augmentation);
    let out: TaskOutput;
    let agentError: string | undefined;
    let grade: { correct: boolean; checks: Array<{ name: string; pass: boolean }>; exception?: string } | null = null;
    if (workers) {
      const r = await workers.run({ kind: 'solve', family: family.id, task: gen.task, variant, session, index: i, ...(tools ? { protocol: 'tools' } : {}) });
      [out, agentError, grade] = [r.output, r.agentError, r.grade];
    } else {
      // tools: the episode as `ehrgym eval --protocol tools` runs it (tool calls of the same actions, live POSTs)
      const res = tools
        ? await runToolsEpisode({
            index: i,
            task: gen.task,
            agent,
            env: directToolEnvironment({ fhir: remoteFor(session), postMode: 'live', dialect: taskDialect(gen.task) }),
            apiBase: OFFICIAL_API_BASE,
          })
        : await runEpisode({ index: i, task: gen.task, agent, fhir: remoteFor(session), apiBase: OFFICIAL_API_BASE });
      [out, agentError] = [res.output, res.agentError];
      if (agentError === undefined && out.status === 'completed') grade = await family.grade(gen.task, out, access);
    }
    const base = { task_id: gen.task.id, family: family.id };
    if (agentError !== undefined) return { drop: { stage: 'solve', reason: `solver error: ${agentError.split('\n')[0]}`, ...base } };
    if (out.status !== 'completed' || !grade) return { drop: { stage: 'solve', reason: `status: ${out.status}`, ...base } };
    if (!grade.correct) return { solved: true, drop: { stage: 'grade', reason: firstFailure(grade.checks, grade.exception), ...base } };
    const meta = {
      row_id: `${gen.task.id}/${variant}${inst.augmentation.includes('paraphrase') ? '/paraphrase' : ''}`,
      task_family: family.id,
      task_id: gen.task.id,
      branch: gen.branch,
      patient: gen.patient,
      world: worldMeta,
      task: gen.task,
      solver_version: `${deps.solverVersion}/${variant}`,
      grader_version: deps.graderVersion,
      harness_version: VERSION,
    };
    if (tools) {
      const transcript = (out.messages ?? []).map((m) => orderedMessage(m as ToolsMessage));
      // the graded text history performs the same actions; every tool answer is what the action answers when the
      // episode is executed again, in order, in a fresh copy of its session (in-process, live POSTs)
      const expected = out.history!.filter((h) => h.role === 'agent').map((h) => parseCanonical(h.content, { put: taskDialect(gen.task).put }));
      if (expected.some((a) => a.kind === 'invalid'))
        throw new FactoryFailure(`parity check failed for ${gen.task.id}: the graded history has an invalid action`);
      world.store.dropSession(session);
      const fhir = inProcessTransport(server.app, { session });
      const issues = await checkToolsParity(transcript, gen.task, {
        apiBase: OFFICIAL_API_BASE,
        expected: expected as Array<Exclude<Action, { kind: 'invalid' }>>,
        answer: (action) => executeAction(action, { fhir, postMode: 'live', jsonLoads: defaultJsonLoads }),
      });
      world.store.dropSession(session);
      if (issues.length) throw new FactoryFailure(`parity check failed for ${gen.task.id} turn ${issues[0]!.turn}: ${issues[0]!.problem}`);
      // the graded text history is exactly the transcript's actions and answers
      if (stableStringify(textHistory(transcript, OFFICIAL_API_BASE, taskDialect(gen.task))) !== stableStringify(out.history))
        throw new FactoryFailure(`parity check failed for ${gen.task.id}: the graded history is not the transcript's actions and answers`);
      return {
        solved: true,
        row: {
          messages: transcript,
          meta: {
            ...meta,
            content_sha256: toolsContentHash(transcript),
            origin: 'expert',
            augmentation: inst.augmentation,
            session,
            verified: true,
            protocol: 'tools',
          },
        },
      };
    }
    const messages = out.history!.map((h) => ({ role: h.role === 'agent' ? ('assistant' as const) : ('user' as const), content: h.content }));
    const expected = out.history!.filter((h) => h.role === 'agent').map((h) => parseAction(h.content, { put: taskDialect(gen.task).put }));
    const issues = await checkParity(messages, gen.task, { fhir: inProcessTransport(server.app, { session }), expected });
    world.store.dropSession(session);
    if (issues.length) throw new FactoryFailure(`parity check failed for ${gen.task.id} turn ${issues[0]!.turn}: ${issues[0]!.problem}`);
    return {
      solved: true,
      row: {
        messages,
        meta: {
          ...meta,
          content_sha256: contentHash(messages),
          origin: 'expert',
          augmentation: inst.augmentation,
          session,
          verified: true,
        },
      },
    };
  };

  // ---- 1-3, in rounds: synthesize → solve over HTTP → grade → parity → dedup / pollution / length filter.
  // Round 0 draws each (family, branch) quota with a margin; later rounds draw only what is still missing, from
  // patients not used yet, until the quotas are met or the training pool is exhausted.
  const quotas = familyQuotas(p.families, p.size, p.perFamily);
  const requested = Object.fromEntries(quotas);
  const wanted = new Map<string, Map<string, number>>();
  const accepted = new Map<string, CorpusRow[]>(); // base rows per family, in acceptance order
  const augRows: CorpusRow[] = [];
  const seenKeys = new Map<string, Set<string>>();
  const usedPatients = new Map<string, Set<string>>();
  const exhausted = new Set<string>();
  const attempts = new Map<string, number>();
  const famDeficit = new Map<string, number>();
  const reallocated: string[] = [];
  const dedupSeen = new Map<string, string>();
  const nextIndex = new Map<string, number>();
  let deduplicated = 0;
  for (const fam of p.families) {
    const quota = quotas.get(fam)!;
    if (quota === 0) continue;
    const family = fams.get(fam)!;
    wanted.set(fam, branchQuotas(p.balance === 'balanced' ? family.branches : ['*'], quota));
    accepted.set(fam, []);
    seenKeys.set(fam, new Set());
    usedPatients.set(fam, new Set());
    nextIndex.set(fam, 1);
  }
  const have = (fam: string, b: string) => accepted.get(fam)!.filter((r) => b === '*' || r.meta.branch === b).length;
  const filterRow = (r: CorpusRow): boolean => {
    const first = dedupSeen.get(r.meta.content_sha256);
    if (first !== undefined) {
      drops.push({ stage: 'dedup', reason: `duplicate of ${first}`, row_id: r.meta.row_id, task_id: r.meta.task_id, family: r.meta.task_family });
      return false;
    }
    dedupSeen.set(r.meta.content_sha256, r.meta.row_id);
    deduplicated++;
    // tools rows: the filters read their text (tool answers as user turns, calls as `name arguments`)
    const reasons = pollutionReasons(isToolsRow(r) ? { ...r, messages: textView(r.messages) } : r, index);
    if (reasons.length) {
      drops.push({
        stage: 'pollution',
        reason: reasons.join(','),
        row_id: r.meta.row_id,
        task_id: r.meta.task_id,
        family: r.meta.task_family,
        ...(r.meta.source ? { source: `${r.meta.source.file}#${r.meta.source.index}` } : {}),
      });
      return false;
    }
    if (isToolsRow(r) ? rowTokens(tokens(), r) > p.maxTokens : exceedsTokens(r.messages, p.maxTokens, tokens())) {
      const n = tokens().exact ? `: ${rowTokens(tokens(), r)} tokens` : '';
      drops.push({
        stage: 'length',
        reason: `over --max-tokens ${p.maxTokens}${n}`,
        row_id: r.meta.row_id,
        task_id: r.meta.task_id,
        family: r.meta.task_family,
      });
      return false;
    }
    return true;
  };

  const synthesize = async (round: number): Promise<SynthesizedRound> => {
    stage(round === 0 ? 'synthesize' : `synthesize (round ${round + 1})`);
    const instances: Instance[] = [];
    const exhaustedBefore = exhausted.size;
    // a branch the pool cannot fill any more passes its deficit to the family's other branches
    for (const [fam, bq] of wanted) {
      let deficit = 0;
      const open: string[] = [];
      for (const [b, q] of bq) {
        if (exhausted.has(`${fam}|${b}`)) {
          const h = have(fam, b);
          if (q > h) {
            deficit += q - h;
            bq.set(b, h);
          }
        } else open.push(b);
      }
      if (deficit > 0 && open.length > 0) {
        const extra = branchQuotas(open, deficit);
        for (const b of open) bq.set(b, bq.get(b)! + extra.get(b)!);
      } else if (deficit > 0) famDeficit.set(fam, deficit);
    }
    // with --size (not --per-family), a family the pool cannot fill passes its deficit to the other families
    if (p.perFamily === null) {
      for (const [fam, deficit] of famDeficit) {
        famDeficit.delete(fam);
        quotas.set(fam, quotas.get(fam)! - deficit);
        const open = [...remainderOrder(), ...p.families].filter(
          (f, i, a) => a.indexOf(f) === i && wanted.has(f) && f !== fam && [...wanted.get(f)!.keys()].some((b) => !exhausted.has(`${f}|${b}`)),
        );
        if (open.length === 0) {
          quotas.set(fam, quotas.get(fam)! + deficit); // nowhere to go: the size check reports it
          continue;
        }
        const share = branchQuotas(open, deficit);
        for (const f of open) {
          const add = share.get(f)!;
          if (add === 0) continue;
          quotas.set(f, quotas.get(f)! + add);
          const bq = wanted.get(f)!;
          const openB = [...bq.keys()].filter((b) => !exhausted.has(`${f}|${b}`));
          const extra = branchQuotas(openB, add);
          for (const b of openB) bq.set(b, bq.get(b)! + extra.get(b)!);
        }
        reallocated.push(`${fam} -${deficit}`);
      }
    }
    const specs: Array<{
      fam: string;
      family: TaskFamily;
      key: string;
      tried: number;
      branch: string | undefined;
      stream: string;
      patients: string[];
      count: number;
      startIndex: number;
    }> = [];
    for (const [fam, bq] of wanted) {
      const family = fams.get(fam)!;
      const used = usedPatients.get(fam)!;
      const hints = world.facts ? branchHints(fam, world.facts) : null;
      for (const [b, quota] of bq) {
        const key = `${fam}|${b}`;
        if (exhausted.has(key)) continue;
        const missing = quota - have(fam, b);
        if (missing <= 0) continue;
        // draw in proportion to the share of this branch's earlier instances that survived every filter
        const tried = attempts.get(key) ?? 0;
        const yieldRate = round === 0 ? 1 : Math.max(0.02, (have(fam, b) + 1) / (tried + 1));
        // a branch whose instances survive the filters less than 1 time in 10 (e.g. nearly every row is over
        // --max-tokens) is not worth scanning the pool for: treat it as exhausted and move its deficit
        if (tried >= 20 && have(fam, b) / tried < 0.1) {
          exhausted.add(key);
          continue;
        }
        const want = Math.min(5000, Math.ceil((missing / yieldRate) * (round === 0 ? 1.05 : 1.15)) + (round === 0 ? 1 : 2));
        let branch: string | undefined;
        let stream: string;
        let candidates: string[];
        if (b === '*' || bq.size === 1) [branch, stream, candidates] = [undefined, 'natural', training];
        // with planted facts the hinted candidates are the pool; without, the generator scans all patients
        else if (hints) [branch, stream, candidates] = [b, `branch:${b}`, (hints.get(b) ?? []).filter((m) => trainingSet.has(m))];
        else [branch, stream, candidates] = [b, `branch-scan:${b}`, training];
        const free = family.factory.reusePatients ? candidates : candidates.filter((m) => !used.has(m));
        const startIndex = nextIndex.get(fam)!;
        nextIndex.set(fam, startIndex + want);
        specs.push({ fam, family, key, tried, branch, stream, patients: free, count: want, startIndex });
      }
    }
    // the draws of a round are independent: run them concurrently, merge in a fixed order
    const gens = await Promise.all(
      specs.map((sp) => {
        if (sp.patients.length === 0) return Promise.resolve([] as GeneratedTask[]);
        const rngKey: Array<string | number> = ['factory', p.seed, sp.fam, sp.stream, round];
        // generators stay on the main thread: in-process reads avoid shipping full-history Bundles over HTTP
        return sp.family.generate(access, {
          rng: rngFor(...rngKey),
          patients: sp.patients,
          ...(sp.branch !== undefined ? { branch: sp.branch } : {}),
          count: sp.count,
          startIndex: sp.startIndex,
        });
      }),
    );
    specs.forEach((sp, si) => {
      const seen = seenKeys.get(sp.fam)!;
      const used = usedPatients.get(sp.fam)!;
      let got = 0;
      for (const drawn of gens[si]!) {
        // a suite's corpus is its train split: instructions by the family's paraphrases, never the test template
        const g = p.tasks !== undefined ? trainParaphrase(drawn, sp.family, ['factory', p.seed, 'train-paraphrase', drawn.task.id]) : drawn;
        const k = `${g.task.instruction}\u0000${g.task.context}`;
        if (seen.has(k)) continue;
        seen.add(k);
        if (g.patient) used.add(g.patient);
        got++;
        const family = sp.family;
        const primary = primaryVariant(family);
        instances.push({ gen: g, family, variant: primary, augmentation: [] });
        if (p.augment.includes('variants')) {
          for (const v of family.variants) if (v !== primary) instances.push({ gen: g, family, variant: v, augmentation: [`variant:${v}`] });
        }
        if (p.augment.includes('paraphrase')) {
          const para = paraphraseTask(g.task, rngFor('factory', p.seed, 'paraphrase', g.task.id).int(0, 1000));
          if (para) instances.push({ gen: { ...g, task: para }, family, variant: primary, augmentation: ['paraphrase'] });
        }
      }
      if (got === 0) exhausted.add(sp.key);
      attempts.set(sp.key, sp.tried + got);
    });
    if (instances.length > 0) {
      synthesized += instances.length;
      lap(round === 0 ? 'synthesize' : `synthesize-${round + 1}`);
    }
    return { instances, progressed: exhausted.size !== exhaustedBefore };
  };

  const solve = (instances: Instance[], round: number): Promise<SolveResult[]> => {
    stage(round === 0 ? 'solve' : `solve (round ${round + 1})`);
    return pool(instances, opts.concurrency ?? 8, (inst, i) => solveOne(inst, i));
  };

  const filter = (results: SolveResult[], round: number): void => {
    for (const r of results) {
      if (r.solved) solved++;
      if (r.drop) drops.push(r.drop);
      if (!r.row) continue;
      passed++;
      if (!filterRow(r.row)) continue;
      if (r.row.meta.augmentation.length) augRows.push(r.row);
      else accepted.get(r.row.meta.task_family)!.push(r.row);
    }
    lap(round === 0 ? 'solve+grade+filter' : `solve+grade+filter-${round + 1}`);
  };

  const collect = async (): Promise<{ rows: CanonicalRow[]; read: number }> => {
    // ---- 4. collect
    stage('collect');
    const worldCache = new Map<string, Promise<{ fhir: FhirTransport; close: () => Promise<void> } | null>>();
    const collected = await collectRows(
      sources,
      {
        regrade: async (ep) => {
          // re-grade against the run's world: this run's world when the fingerprints agree, or the replica
          if (ep.world.name.startsWith('external:')) return null;
          const same = ep.world.fingerprint === world.fingerprint;
          if (!same && ep.world.name !== 'medagentbench') return null;
          const key = same ? 'current' : 'medagentbench';
          if (!worldCache.has(key)) {
            worldCache.set(
              key,
              (async () => {
                const w = same ? world : await deps.loadWorld('medagentbench', 0, null);
                if (!same && ep.world.fingerprint && w.fingerprint !== ep.world.fingerprint) return null;
                const s = await startFhirServer(w.store, { port: 0, trustForwarded: true });
                return { fhir: inProcessTransport(s.app), close: () => s.close() };
              })(),
            );
          }
          const w = await worldCache.get(key)!;
          const fam = fams.get(ep.task.id.split('_')[0]!);
          if (!w || !fam) return null;
          return fam.grade(ep.task, ep.output, { apiBase: OFFICIAL_API_BASE, fhir: w.fhir });
        },
        solverVersion: deps.solverVersion,
        graderVersion: deps.graderVersion,
        harnessVersion: VERSION,
      },
      drops,
    );
    for (const w of worldCache.values()) await (await w)?.close();
    // collected rows must also hold the protocol (e.g. a run made with another api_base or live POSTs is dropped)
    const collectedOk: CanonicalRow[] = [];
    for (const r of collected) {
      const issues = await checkParity(r.messages, r.meta.task);
      if (issues.length)
        drops.push({
          stage: 'collect',
          reason: `parity: turn ${issues[0]!.turn}: ${issues[0]!.problem}`,
          task_id: r.meta.task_id,
          family: r.meta.task_family,
          source: `${r.meta.source!.file}#${r.meta.source!.index}`,
        });
      else if (filterRow(r)) collectedOk.push(r);
    }
    lap('collect');
    return { rows: collectedOk, read: collected.length };
  };

  const assemble = ({ rows: collectedOk, read: collectedRead }: { rows: CanonicalRow[]; read: number }) => {
    // ---- quotas: base rows per (family, branch); a short branch is topped up from the family's other branches
    const polluted = drops.filter((d) => d.stage === 'pollution').length;
    const kept: CorpusRow[] = [];
    let surplus = 0;
    for (const [fam, bq] of wanted) {
      const baseRows = accepted.get(fam)!;
      const quota = quotas.get(fam)!;
      if (baseRows.length < quota) {
        throw new FactoryInputError(
          `--size ${p.perFamily !== null ? `(--per-family ${p.perFamily})` : p.size} cannot be filled: ${fam} yields ${baseRows.length} of ${quota} verified, unique, leak-free examples within --max-tokens ${p.maxTokens} from the ${training.length} training patients of world ${world.name}${world.seed !== null ? ` seed ${world.seed}` : ''} (use a larger --patients or a smaller --size)`,
        );
      }
      const chosen = new Set<CorpusRow>();
      for (const [b, n] of bq) for (const r of baseRows.filter((x) => b === '*' || x.meta.branch === b).slice(0, n)) chosen.add(r);
      for (const r of baseRows) {
        if (chosen.size >= quota) break;
        chosen.add(r);
      }
      const famKept = baseRows.filter((r) => chosen.has(r));
      const chosenTasks = new Set(famKept.map((r) => r.meta.task_id));
      surplus += baseRows.length - famKept.length;
      kept.push(...famKept, ...augRows.filter((r) => r.meta.task_family === fam && chosenTasks.has(r.meta.task_id)));
    }
    kept.push(...collectedOk);
    kept.forEach((r, i) => {
      if (r.meta.origin === 'expert') r.meta.row_id = `${r.meta.task_family}-s${p.seed}-${String(i + 1).padStart(6, '0')}`;
    });
    // boundary coverage (synthetic worlds): planted time edges and dosing values of the kept expert rows
    const boundary: Record<string, number> = {};
    if (world.facts) {
      const byMrn = new Map(world.facts.map((f) => [f.mrn, f]));
      for (const r of kept) {
        const f = r.meta.origin === 'expert' && r.meta.patient ? byMrn.get(r.meta.patient) : undefined;
        if (!f) continue;
        for (const tag of boundaryTags(r.meta.task_family, f)) {
          const k = `${r.meta.task_family} ${tag}`;
          boundary[k] = (boundary[k] ?? 0) + 1;
        }
      }
    }
    const split = splitRows(kept, p.validFraction, p.seed);
    const evalSha = evalSet.sha256;
    const { files, manifest } = assembleCorpusFiles({
      counter: tokens(),
      params: p,
      corpusId,
      rows: split,
      drops,
      world: worldMeta,
      evalSet: {
        name: evalSet.name,
        tasks: evalSet.cases.length,
        sha256: evalSha,
        mrns: index.mrns.size,
        identities: [...index.byDob.values()].reduce((a, l) => a + l.length, 0),
        ngram_n: index.n,
      },
      generator: {
        ehrgym: VERSION,
        solver_version: deps.solverVersion,
        grader_version: deps.graderVersion,
        prompt_template_sha256: promptTemplateSha256(),
        functions_sha256: functionsSha256(),
      },
      pipeline: {
        synthesized,
        solved,
        passed,
        collected_read: sources.reduce((a, s) => a + s.lines, 0),
        collected_kept: collectedOk.length,
        deduplicated,
        polluted,
        kept: kept.length,
        surplus,
      },
      boundary,
      quotas: { requested, final: Object.fromEntries([...quotas].filter(([f]) => wanted.has(f))), reallocated },
      parity: {
        checked: passed + collectedRead,
        failed: collectedRead - collectedOk.length,
        mode: tools
          ? 'tool calls mapped to the graded actions + every tool answer recomputed by executing the episode again in-process in a fresh copy of its session'
          : 'harness parser + GET replies recomputed in-process (expert); parser + framing (collected)',
      },
    });
    lap('assemble');
    return { files, manifest };
  };

  return {
    params: p,
    corpusId,
    timings,
    drops,
    synthesize,
    solve,
    filter,
    collect,
    assemble,
    async close() {
      await workers?.close();
      await server.close();
    },
  };
}

/**
 * The rounds: synthesize → solve → filter until every quota is met or the pool is exhausted. `solveRound` solves a
 * round's instances (the pipeline's `solve`, or results computed elsewhere: the shards of a sharded run).
 */
export async function runRounds(pl: GeneratePipeline, solveRound: (instances: Instance[], round: number) => Promise<SolveResult[]>): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const { instances, progressed } = await pl.synthesize(round);
    if (instances.length === 0) {
      if (!progressed) break;
      continue; // newly exhausted branches hand their deficit to the other branches next round
    }
    pl.filter(await solveRound(instances, round), round);
  }
}

/** synthesize → solve → filter (in rounds) → collect → assemble → write. */
export async function generateCorpus(opts: GenerateRunOptions): Promise<GenerateResult> {
  const { params: p } = opts;
  const pl = await openPipeline(opts, {
    checkOut: (id) => {
      if (opts.write !== false) checkOutputFolder(p.out, { kind: 'sft-corpus', id }, opts.force ?? false);
    },
  });
  try {
    await runRounds(pl, (instances, round) => pl.solve(instances, round));
    const { files, manifest } = pl.assemble(await pl.collect());
    return finishCorpus(pl, opts, files, manifest);
  } finally {
    await pl.close();
  }
}

/** Writes the assembled corpus (unless `write: false`). */
export function finishCorpus(
  pl: GeneratePipeline,
  opts: Pick<GenerateRunOptions, 'write' | 'force' | 'onStage'>,
  files: Record<string, string>,
  manifest: CorpusManifest,
): GenerateResult {
  const t = performance.now();
  if (opts.write !== false) {
    opts.onStage?.('write');
    writeFolderAtomic(pl.params.out, { kind: 'sft-corpus', id: pl.corpusId }, files, opts.force ?? false);
    pl.timings.write = Math.round(performance.now() - t);
  }
  return { manifest, files, drops: pl.drops, timings: pl.timings };
}

export { retrying };
