/**
 * `ehrgym env serve [--port 8091] [--host 127.0.0.1] [--tasks FILE...] [--train-size N] [--train-seed N]
 *                   [--max-sessions N] [--idle-timeout S] [--max-steps N] [--replica-id ID] [--json]`
 *
 * The environment server RL trainers plug into: MedAgentBench episodes on copy-on-write sessions of the replica, over
 * the Open Reward Standard (HTTP + SSE) and OpenEnv (WebSocket, JSON-RPC) surfaces on one port (docs/env.md).
 */
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { intFlag, replicaIdFlag } from './flags.js';
import { REPLICA_ID_ENV } from '../fhir/replica.js';
import { exposureWarning } from './serve.js';
import { buildEnv, startEnvServer } from '../env/server.js';
import { DEFAULT_IDLE_TIMEOUT_S, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_STEPS, ENV_NAME } from '../env/core.js';
import { DEFAULT_TRAIN_SEED, DEFAULT_TRAIN_SIZE, MAX_TRAIN_SIZE, SplitError } from '../env/tasks.js';

interface EnvServeFlags {
  port: string;
  host: string;
  tasks?: string[];
  trainSize: string;
  trainSeed: string;
  maxSessions: string;
  idleTimeout: string;
  maxSteps: string;
  replicaId?: string;
  json: boolean;
}

/** Most idle timeout (seconds): one day. */
const MAX_IDLE_TIMEOUT_S = 86_400;

function secondsFlag(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > MAX_IDLE_TIMEOUT_S) {
    throw new CliError(`${flag} must be a number of seconds in (0, ${MAX_IDLE_TIMEOUT_S}], got "${value}"`);
  }
  return n;
}

export function register(program: Command): void {
  const env = program.command('env').description('the RL environment server: MedAgentBench episodes over ORS and OpenEnv');
  env
    .command('serve')
    .description('serve MedAgentBench episodes (test, train and task-file splits) over ORS (HTTP+SSE) and OpenEnv (WebSocket, JSON-RPC)')
    .option('--port <port>', 'TCP port (0 = any free port)', '8091')
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--tasks <file...>', 'task files to serve as extra splits (named after the file, type validation)')
    .option(
      '--train-size <n>',
      `train tasks asked of the generators (branches the replica cannot fill give fewer), 1..${MAX_TRAIN_SIZE}`,
      String(DEFAULT_TRAIN_SIZE),
    )
    .option('--train-seed <n>', 'seed of the train generators', String(DEFAULT_TRAIN_SEED))
    .option('--max-sessions <n>', 'most live sessions over both surfaces together', String(DEFAULT_MAX_SESSIONS))
    .option('--idle-timeout <s>', 'seconds without a request after which a session is dropped', String(DEFAULT_IDLE_TIMEOUT_S))
    .option('--max-steps <n>', 'tool calls per episode; reaching it without finish ends the episode with reward 0', String(DEFAULT_MAX_STEPS))
    .option('--replica-id <id>', `prefix of the session ids this replica mints, for a load balancer routing on it (default: $${REPLICA_ID_ENV}, else none)`)
    .option('--json', 'print the startup summary as one JSON line', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym env serve                                   # ORS + OpenEnv at http://127.0.0.1:8091 (ehrgym view uses 8090)
  ehrgym env serve --port 0 --train-size 1000 --train-seed 7 --json
  ehrgym env serve --tasks out/tasks.json           # one more split, "tasks"
  ehrgym env serve --tasks ehrgym-clinical         # the clinical suite: its test split and its train split
  curl -s http://127.0.0.1:8091/list_environments
  curl -s -X POST http://127.0.0.1:8091/${ENV_NAME}/num_tasks -H 'content-type: application/json' -d '{"split":"train"}'
`,
    )
    .action(async (o: EnvServeFlags) => {
      const port = intFlag('--port', o.port, 0, 65535);
      if (!o.host.trim()) throw new CliError('--host must not be empty');
      const trainSize = intFlag('--train-size', o.trainSize, 1, MAX_TRAIN_SIZE);
      const trainSeed = intFlag('--train-seed', o.trainSeed, 0, 2 ** 32 - 1);
      const maxSessions = intFlag('--max-sessions', o.maxSessions, 1, 1_000_000);
      const idleTimeoutS = secondsFlag('--idle-timeout', o.idleTimeout);
      const maxSteps = intFlag('--max-steps', o.maxSteps, 1, 10_000);
      const replicaId = replicaIdFlag(o.replicaId);
      const warning = exposureWarning(o.host, false);
      if (warning) process.stderr.write(warning.replace('the FHIR API', 'the environment server'));
      const t0 = performance.now();
      let built;
      try {
        built = await buildEnv({
          trainSize,
          trainSeed,
          taskFiles: o.tasks,
          maxSessions,
          idleTimeoutMs: idleTimeoutS * 1000,
          maxSteps,
          replicaId,
          // where loading takes a while (a suite's train split: half a minute), say what it is doing
          onStage: o.json || !process.stderr.isTTY ? undefined : (stage) => process.stderr.write(`env serve: ${stage}…\n`),
        });
      } catch (e) {
        if (e instanceof SplitError) throw new CliError(e.message);
        throw e;
      }
      const { core } = built;
      let server;
      try {
        server = await startEnvServer(core, { host: o.host, port });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EADDRINUSE') throw new CliError(`--port ${port}: address already in use on ${o.host}`, 1);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new CliError(`--host ${o.host}: cannot bind (${code})`, 1);
        throw e;
      }
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      const splits = core.splitList().map((s) => ({ name: s.name, type: s.type, tasks: s.tasks.length }));
      if (o.json) {
        const summary = {
          url: server.url,
          env: ENV_NAME,
          splits,
          train_dropped: built.trainDropped,
          max_sessions: maxSessions,
          idle_timeout_s: idleTimeoutS,
          max_steps: maxSteps,
        };
        process.stdout.write(`${JSON.stringify(replicaId === undefined ? summary : { ...summary, replica_id: replicaId })}\n`);
      } else {
        process.stdout.write(`ehrgym environment server (${ENV_NAME}) at ${server.url}  [loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s]\n`);
        if (replicaId !== undefined) process.stdout.write(`replica ${replicaId}: session ids are minted as ${replicaId}.<uuid>\n`);
        process.stdout.write(`splits: ${splits.map((s) => `${s.name} (${s.type}, ${s.tasks} tasks)`).join(', ')}\n`);
        process.stdout.write(`ORS:     ${server.url}/list_environments   OpenEnv: ${server.url.replace('http', 'ws')}/ws, ${server.url}/mcp\n`);
        process.stdout.write('press Ctrl+C to stop\n');
      }
      await stopped;
      await server.close();
      if (!o.json) process.stdout.write('ehrgym: environment server stopped\n');
    });
}
