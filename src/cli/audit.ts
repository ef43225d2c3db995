/**
 * `ehrgym audit [--tasks NAME|FILE] [--families LIST] [--protocol text|tools|mcp] [--json] [--out DIR] [--max-rate R]`:
 * the degenerate policies' success rates per family (src/eval/audit.ts).
 */
import { type Command, Option } from 'commander';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { CliError, evalInput } from './errors.js';
import { intFlag, isEmptyOrMissing, outputPath } from './flags.js';
import { EvalError } from '../eval/run.js';
import { checkTaskSetWorld, openBackend, openTaskSet, worldOfTaskSet } from '../eval/setup.js';
import { auditJson, formatAuditTable, rateViolations, runAudit } from '../eval/audit.js';
import { DEGENERATE_POLICIES } from '../agent/backends/degenerate.js';
import { POST_MODES, type PostMode } from '../agent/loop.js';
import { type McpToolHost, startMcpToolHost } from '../agent/mcp-env.js';
import { PROTOCOLS, type Protocol } from '../protocol/action.js';
import { OFFICIAL_API_BASE } from '../fhir/types.js';

interface AuditFlags {
  tasks: string;
  families?: string;
  protocol: string;
  postMode?: string;
  concurrency: string;
  json?: boolean;
  out?: string;
  maxRate?: string;
  progress: boolean;
}

/** `--max-rate`: a number in [0, 1]. */
function maxRateFlag(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new CliError(`--max-rate must be a number between 0 and 1, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('audit')
    .description(
      `run the degenerate policies (${DEGENERATE_POLICIES.join(', ')}) over a task set and print each family's success rates: the points it gives away`,
    )
    .option('--tasks <name|file>', 'task set: medagentbench-v2, medagentbench-v1, ehrgym-clinical or a task file', 'medagentbench-v2')
    .option('--families <list>', 'only these families, e.g. task5,task9')
    .addOption(new Option('--protocol <protocol>', 'agent protocol of the runs (verdicts are the same in each)').choices([...PROTOCOLS]).default('text'))
    .addOption(new Option('--post-mode <mode>', 'official | live (default: official with --protocol text, else live)').choices([...POST_MODES]))
    .option('--concurrency <n>', 'episodes in parallel within a policy', '8')
    .option('--json', 'print {"policies": {"<policy>": {"<family>": <rate 0..1>, …}, …}}')
    .option('--out <dir>', 'keep the runs: one run folder per policy (<dir>/<policy>/) and audit.json; must be empty or new')
    .option('--max-rate <r>', 'exit 1 when a policy passes more than this fraction (0..1) of any family, naming them')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Policies:
  finish-empty          FINISH([]) at once
  finish-nothing-found  the family's "nothing found" answer at once ([-1]; task1 ["Patient not found"])
  give-up               FINISH(["unknown"]) at once
  read-then-finish      the expert's reads, then FINISH([])
  always-act            the family's action whatever the data (no reads), then FINISH([])

Examples:
  ehrgym audit                                    # MedAgentBench v2: the table
  ehrgym audit --tasks medagentbench-v1 --json
  ehrgym audit --tasks suite.json --max-rate 0.05 # exit 1 when a policy passes more than 5% of a family
`,
    )
    .action(async (f: AuditFlags) => {
      const maxRate = f.maxRate === undefined ? undefined : maxRateFlag(f.maxRate);
      const concurrency = intFlag('--concurrency', f.concurrency, 1, 256);
      if (f.out !== undefined) {
        outputPath('--out', f.out, 'dir');
        if (!isEmptyOrMissing(f.out)) throw new CliError(`--out ${f.out}: not empty (the audit writes a run folder per policy there)`);
      }
      const taskSet = evalInput(() => openTaskSet(f.tasks));
      const known = new Set(taskSet.tasks.map((t) => t.id.split('_')[0]));
      const families = f.families
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (families !== undefined && families.length === 0) throw new CliError('--families: expected a comma-separated list of families, got ""');
      for (const fam of families ?? []) {
        if (!known.has(fam)) throw new CliError(`--families: no family "${fam}" in ${taskSet.name} (has ${[...known].join(', ')})`);
      }
      const protocol = f.protocol as Protocol;
      const postMode = (f.postMode ?? (protocol === 'text' ? 'official' : 'live')) as PostMode;
      const apiBase = OFFICIAL_API_BASE;
      const world = evalInput(() => worldOfTaskSet(taskSet, {}));
      const backend = await openBackend({ apiBase, ...world, live: postMode === 'live' });
      try {
        evalInput(() => checkTaskSetWorld(taskSet, backend));
      } catch (err) {
        await backend.close();
        throw err;
      }
      const out = f.out !== undefined ? resolve(f.out) : mkdtempSync(join(tmpdir(), 'ehrgym-audit-'));
      const episodes = taskSet.tasks.filter((t) => !families || families.includes(t.id.split('_')[0])).length;
      const bar =
        f.progress && !f.json && process.stderr.isTTY
          ? new cliProgress.SingleBar(
              {
                stream: process.stderr,
                format: 'audit {bar} {value}/{total} episodes | {policy}',
                hideCursor: true,
                clearOnComplete: true,
              },
              cliProgress.Presets.shades_classic,
            )
          : null;
      bar?.start(episodes * DEGENERATE_POLICIES.length, 0, { policy: DEGENERATE_POLICIES[0] });
      const ac = new AbortController();
      const onSigint = () => ac.abort();
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      let mcp: McpToolHost | undefined;
      let result;
      const t0 = performance.now();
      try {
        if (protocol === 'mcp') mcp = await startMcpToolHost({ apiBase, postMode });
        const host = mcp;
        mkdirSync(out, { recursive: true });
        result = await runAudit({
          taskSet,
          backend,
          out,
          apiBase,
          protocol,
          postMode,
          toolEnvironment: host ? (e) => host.environment({ sessionId: e.sessionId, fhir: e.session.transport }) : undefined,
          families,
          concurrency,
          signal: ac.signal,
          onEpisode: bar ? (policy) => bar.increment(1, { policy }) : undefined,
        });
      } catch (err) {
        if (err instanceof EvalError) throw new CliError(err.message);
        throw err;
      } finally {
        bar?.stop();
        process.removeListener('SIGINT', onSigint);
        process.removeListener('SIGTERM', onSigint);
        await mcp?.close();
        await backend.close();
        if (f.out === undefined) rmSync(out, { recursive: true, force: true });
      }
      if (result.interrupted) throw new CliError(`interrupted${f.out !== undefined ? `; ${f.out} holds the runs finished so far` : ''}`, 130);
      const json = auditJson(result);
      if (f.out !== undefined) writeFileSync(join(out, 'audit.json'), JSON.stringify(json, null, 2) + '\n');
      process.stdout.write(f.json ? JSON.stringify(json, null, 2) + '\n' : formatAuditTable(result));
      if (!f.json) {
        const secs = (performance.now() - t0) / 1000;
        process.stderr.write(
          `audit: ${result.rows.length} policies × ${result.tasks} tasks in ${secs.toFixed(1)} s${f.out !== undefined ? `; runs in ${f.out}` : ''}\n`,
        );
      }
      const broken = result.rows.filter((r) => r.agentFailures > 0);
      if (broken.length > 0) {
        const names = broken.map((r) => `${r.policy} (${r.agentFailures})`).join(', ');
        throw new CliError(
          `episodes failed in the policy: ${names}; they count as failures${f.out !== undefined ? ` (see <out>/<policy>/error.jsonl)` : ''}`,
          1,
        );
      }
      if (maxRate !== undefined) {
        const lines = rateViolations(result, maxRate);
        if (lines.length > 0) {
          for (const l of lines) process.stderr.write(`audit: ${l}\n`);
          throw new CliError(`${lines.length} of ${result.families.length} families exceed --max-rate ${f.maxRate}`, 1);
        }
      }
    });
}
