import { type Command, Option } from 'commander';
import { join, resolve } from 'node:path';
import { CliError, evalInput } from './errors.js';
import { DEFAULT_PATIENTS, existingDir, httpUrl, optionalHttpUrl, optionalIntFlag, outputPath, shardFlag } from './flags.js';
import { MAX_SYNTHETIC_PATIENTS } from '../worlds/synthetic.js';
import { createAgent, AgentConfigError } from '../agent/create.js';
import { OpenAIAgent } from '../agent/backends/openai.js';
import { POST_MODES, type PostMode } from '../agent/loop.js';
import { runEval, EvalError } from '../eval/run.js';
import { openTaskSet, openBackend, checkApiBase, checkTaskSetWorld, officialGrader, worldOfTaskSet } from '../eval/setup.js';
import { formatSummary } from '../eval/format.js';
import { PROTOCOLS, type Protocol } from '../protocol/action.js';
import { toolNames } from '../protocol/tools.js';
import type { ToolChoice } from '../agent/backends/openai.js';
import { ReplyCache } from '../agent/backends/reply-cache.js';
import { type McpToolHost, startMcpToolHost } from '../agent/mcp-env.js';
import { taskDialect } from '../protocol/dialect.js';

interface EvalFlags {
  tasks: string;
  agent: string;
  out: string;
  concurrency: string;
  limit?: string;
  tasksFilter?: string;
  resume?: boolean;
  json?: boolean;
  apiBase?: string;
  fhirUrl?: string;
  world?: string;
  seed?: string;
  patients?: string;
  postMode?: string;
  protocol: string;
  recoverToolText?: boolean;
  toolChoice?: string;
  replyCache?: string | true;
  trials?: string;
  shard?: string;
  maxRounds: string;
  baseUrl: string[];
  apiKeyEnv: string;
  extra?: string;
  temperature?: string;
  maxTokens?: string;
  maxRetries?: string;
  timeout?: string;
  progress: boolean;
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new CliError(`${flag}: expected a number, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('run a task set through an agent with the official MedAgentBench harness; writes an AgentBench-compatible run folder')
    .requiredOption('--agent <spec>', 'openai:<model> | oracle | finish-empty | give-up | replay:<runs.jsonl>')
    .requiredOption('--out <dir>', 'run folder (runs.jsonl, error.jsonl, overall.json, summary.json, grades.jsonl)')
    .option('--tasks <name|file>', 'task set: medagentbench-v2, medagentbench-v1, ehrgym-clinical or a task file', 'medagentbench-v2')
    .option('--concurrency <n>', 'episodes in parallel', '4')
    .option('--limit <n>', 'only the first N selected tasks')
    .option('--tasks-filter <families>', 'only these families, e.g. task5,task9')
    .option('--resume', 'continue an interrupted run in --out (refused if the manifest changed)')
    .option('--json', 'print the summary as JSON')
    .option('--api-base <url>', 'api_base advertised in prompts and used by the grader (default http://localhost:8080/fhir/)')
    .option('--fhir-url <url>', 'use an external FHIR server (the api_base is mapped onto it) instead of the embedded world')
    .option('--world <name>', 'embedded world (default: the one the task set was made on; the replica for the official sets)')
    .option('--seed <n>', 'synthetic world: seed (default: recorded in the task set, else 1)')
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default: recorded in the task set, else ${DEFAULT_PATIENTS})`)
    .addOption(
      new Option('--protocol <protocol>', 'text: the official text protocol; tools: OpenAI function calling; mcp: MCP tools over loopback HTTP')
        .choices([...PROTOCOLS])
        .default('text'),
    )
    .addOption(
      new Option(
        '--post-mode <mode>',
        'official: POSTs are not sent (as upstream); live: executed in the episode session (default: official with --protocol text, else live)',
      ).choices([...POST_MODES]),
    )
    .option('--recover-tool-text', 'tools/mcp: read <tool_call>{…}</tool_call> text a server left in a reply as its tool calls')
    .option('--tool-choice <choice>', 'tools/mcp, openai: tool_choice sent with every request: auto | required | none | a tool name')
    .option(
      '--reply-cache [file]',
      'openai: answer requests seen before from this JSONL file and append new replies to it (default <out>/reply-cache.jsonl; keyed by the full request; no API key stored)',
    )
    .option('--max-rounds <n>', 'agent turns per episode', '8')
    .option('--trials <k>', 'episodes per task (default 1); the summary adds pass@k (unbiased) and pass^k (τ-bench); use with --temperature')
    .option('--shard <i/N>', 'run only shard i of N (0-based: 0/4 … 3/4; every N-th task of the selection, all its trials); join the shards with ehrgym merge')
    .option('--base-url <url>', 'OpenAI-compatible endpoint (repeat to share load across replicas)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--api-key-env <name>', 'environment variable holding the API key', 'OPENAI_API_KEY')
    .option('--extra <json>', 'extra request fields, e.g. \'{"chat_template_kwargs":{"enable_thinking":false}}\'')
    .option('--temperature <t>', 'sampling temperature (default 0)')
    .option('--max-tokens <n>', 'max_tokens (default 2048)')
    .option('--max-retries <n>', 'retries on 429/5xx/timeouts/resets (default 4)')
    .option('--timeout <ms>', 'per-request timeout in ms (default 300000)')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  ehrgym eval --agent oracle --out runs/oracle                    # the expert solvers: 300/300
  ehrgym eval --agent finish-empty --out runs/finish-empty        # FINISH([]) every time: 70/300
  ehrgym eval --agent openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 \\
    --extra '{"chat_template_kwargs":{"enable_thinking":false}}' --concurrency 32 --out runs/qwen3-8b
  ehrgym eval --agent openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --out runs/qwen3-8b --resume
  ehrgym eval --agent oracle --fhir-url http://localhost:8080/fhir/ --out runs/oracle-docker   # the official Docker server
  ehrgym eval --agent openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --protocol tools --out runs/qwen3-8b-tools
  ehrgym eval --agent oracle --protocol mcp --out runs/oracle-mcp   # tools discovered and called over MCP
  ehrgym eval --agent openai:Qwen/Qwen3-8B --base-url http://127.0.0.1:8000/v1 --trials 5 --temperature 0.7 --out runs/qwen3-8b-k5
  ehrgym eval --agent oracle --shard 0/4 --out runs/oracle-0     # shard 0 of 4 (0-based); then:
  ehrgym merge runs/oracle-0 runs/oracle-1 runs/oracle-2 runs/oracle-3 --out runs/oracle
`,
    )
    .action(async (f: EvalFlags) => {
      for (const u of f.baseUrl) httpUrl('--base-url', u);
      optionalHttpUrl('--fhir-url', f.fhirUrl);
      optionalHttpUrl('--api-base', f.apiBase);
      outputPath('--out', f.out, 'dir');
      const shard = shardFlag('--shard', f.shard);
      if (f.resume) existingDir('--resume', f.out, 'drop --resume to start a new run there');
      const apiBase = evalInput(() => checkApiBase(f.apiBase));
      const taskSet = evalInput(() => openTaskSet(f.tasks));
      const families = f.tasksFilter
        ? f.tasksFilter
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined;
      const known = new Set(taskSet.tasks.map((t) => t.id.split('_')[0]));
      for (const fam of families ?? []) {
        if (!known.has(fam)) throw new CliError(`--tasks-filter: no family "${fam}" in ${taskSet.name} (has ${[...known].join(', ')})`);
      }
      let extra: Record<string, unknown> | undefined;
      if (f.extra !== undefined) {
        try {
          extra = JSON.parse(f.extra);
        } catch {
          throw new CliError(`--extra: not valid JSON: ${f.extra}`);
        }
        if (!extra || typeof extra !== 'object' || Array.isArray(extra)) throw new CliError('--extra: expected a JSON object');
      }
      if (f.replyCache !== undefined && !f.agent.startsWith('openai:')) throw new CliError('--reply-cache: only with --agent openai:<model>');
      let replyCache: ReplyCache | undefined;
      const cachePath = f.replyCache === true ? join(f.out, 'reply-cache.jsonl') : f.replyCache;
      if (cachePath !== undefined) {
        outputPath('--reply-cache', cachePath, 'file');
        try {
          replyCache = new ReplyCache(resolve(cachePath));
        } catch (err) {
          throw new CliError(`--reply-cache: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      let agent;
      try {
        agent = createAgent(f.agent, {
          replyCache,
          baseUrls: f.baseUrl.length > 0 ? f.baseUrl : undefined,
          apiKeyEnv: f.apiKeyEnv,
          extra,
          temperature: num('--temperature', f.temperature),
          maxTokens: optionalIntFlag('--max-tokens', f.maxTokens, 1),
          maxRetries: optionalIntFlag('--max-retries', f.maxRetries, 0),
          timeoutMs: optionalIntFlag('--timeout', f.timeout, 1),
          toolChoice: f.toolChoice !== undefined ? toolChoiceFlag(f.toolChoice) : undefined,
        });
      } catch (err) {
        if (err instanceof AgentConfigError) throw new CliError(`--agent: ${err.message}`);
        if (f.agent.startsWith('replay:')) throw new CliError(`--agent: ${err instanceof Error ? err.message : String(err)}`);
        throw err;
      }
      // a filled reply cache lets a run be repeated without the model: requests it does not hold fail as agent errors
      if (agent instanceof OpenAIAgent && !(replyCache && replyCache.size > 0)) {
        try {
          await agent.preflight();
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          if (/refused the API key/.test(msg)) throw new CliError(`--api-key-env: ${msg}`, 2);
          throw new CliError(`--base-url: ${msg}`, 3);
        }
      }
      const protocol = f.protocol as Protocol;
      // the clinical suite's writes are executed (its graders read the record they leave): live by default
      const suiteTasks = taskSet.tasks.some((t) => taskDialect(t).put);
      const postMode = (f.postMode ?? (protocol === 'text' && !suiteTasks ? 'official' : 'live')) as PostMode;
      if (protocol === 'text' && (f.recoverToolText || f.toolChoice !== undefined)) {
        throw new CliError(`${f.recoverToolText ? '--recover-tool-text' : '--tool-choice'}: only with --protocol tools or mcp`);
      }
      const worldReq = {
        world: f.world,
        seed: optionalIntFlag('--seed', f.seed, 0, 2 ** 32 - 1),
        patients: optionalIntFlag('--patients', f.patients, 1, MAX_SYNTHETIC_PATIENTS),
      };
      const world = f.fhirUrl === undefined ? evalInput(() => worldOfTaskSet(taskSet, worldReq)) : {};
      const backend = await wrapAsync(() => openBackend({ apiBase, fhirUrl: f.fhirUrl, ...world, live: postMode === 'live' }));
      try {
        checkTaskSetWorld(taskSet, backend);
      } catch (err) {
        await backend.close();
        if (err instanceof EvalError) throw new CliError(err.message);
        throw err;
      }
      const ac = new AbortController();
      const onSigint = () => ac.abort();
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      let result;
      let mcp: McpToolHost | undefined;
      try {
        // mcp: the tools are served on loopback HTTP and each episode connects an MCP client bound to its session
        if (protocol === 'mcp') mcp = await startMcpToolHost({ apiBase, postMode });
        const host = mcp;
        result = await runEval({
          out: resolve(f.out),
          taskSet,
          agent,
          backend,
          grade: officialGrader,
          apiBase,
          protocol,
          toolEnvironment: host ? (e) => host.environment({ sessionId: e.sessionId, fhir: e.session.transport, dialect: taskDialect(e.task) }) : undefined,
          recoverToolText: f.recoverToolText,
          postMode,
          maxRounds: optionalIntFlag('--max-rounds', f.maxRounds, 1),
          trials: optionalIntFlag('--trials', f.trials, 1, 1000),
          concurrency: optionalIntFlag('--concurrency', f.concurrency, 1),
          limit: optionalIntFlag('--limit', f.limit, 1),
          families,
          shard,
          resume: f.resume,
          progress: f.progress && !f.json ? undefined : false,
          signal: ac.signal,
          // a streak of empty replies means a broken endpoint only when the replies come from one
          emptyReplyStreak: agent instanceof OpenAIAgent ? undefined : 0,
        });
      } catch (err) {
        if (err instanceof EvalError) throw new CliError(err.message);
        throw err;
      } finally {
        process.removeListener('SIGINT', onSigint);
        process.removeListener('SIGTERM', onSigint);
        await mcp?.close();
        await backend.close();
        await agent.close?.();
      }
      if (result.stopped !== undefined) throw new CliError(result.stopped, 1);
      if (result.interrupted) throw new CliError(`interrupted; ${f.out} is kept, continue with --resume`, 130);
      if (replyCache) process.stderr.write(`reply cache: ${replyCache.hits} request(s) answered from ${cachePath}, ${replyCache.misses} sent to the model\n`);
      const summary = result.summary!;
      process.stdout.write(f.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary, f.out));
      if (result.failed.length > 0) {
        throw new CliError(`${result.failed.length} episode(s) failed in the agent (see ${f.out}/error.jsonl); rerun them with --resume`, 1);
      }
    });
}

/** `--tool-choice`: auto | required | none, or the name of a tool (sent as `{type: function, function: {name}}`). */
function toolChoiceFlag(v: string): ToolChoice {
  if (v === 'auto' || v === 'required' || v === 'none') return v;
  if (toolNames().includes(v)) return { type: 'function', function: { name: v } };
  throw new CliError(`--tool-choice: expected auto, required, none or a tool name (${toolNames().join(', ')}), got "${v}"`);
}

async function wrapAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EvalError) throw new CliError(err.message, /--fhir-url/.test(err.message) ? 3 : 2);
    throw err;
  }
}
