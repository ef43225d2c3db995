/**
 * `ehrgym serve [--world medagentbench|synthetic|empty] [--seed N] [--patients N] [--import PATH...] [--port 8080]
 *               [--host 127.0.0.1] [--strict] [--skip-billing] [--max-sessions N] [--max-session-bytes N] [--max-total-session-bytes N]
 *               [--trust-forwarded] [--writable-default] [--mcp-post-mode live|official] [--mcp-idle-timeout S] [--replica-id ID] [--json]`
 *
 * Boots a world into the embedded FHIR R4 server, prints its base URL and serves until SIGINT/SIGTERM. The same port
 * answers MCP at `/mcp` (MedAgentBench's tools, one sandbox session per MCP session; docs/eval.md, "MCP").
 */
import { suiteNames, suitePlantings } from '../tasks/registry.js';
import { EHRGYM_DIALECT } from '../protocol/dialect.js';
import { type Command, Option } from 'commander';
import { CliError } from './errors.js';
import { DEFAULT_PATIENTS, intFlag, replicaIdFlag } from './flags.js';
import { REPLICA_ID_ENV } from '../fhir/replica.js';
import { loadWorld, WORLD_NAMES, type WorldName } from '../worlds/index.js';
import { ImportError, summarizeImport } from '../worlds/import.js';
import { MAX_SYNTHETIC_PATIENTS } from '../worlds/synthetic.js';
import { plantRequest } from '../tasks/registry.js';
import { startFhirServer } from '../fhir/server.js';
import { DEFAULT_MAX_SESSION_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TOTAL_SESSION_BYTES } from '../fhir/store.js';
import { createMcpEndpoint, DEFAULT_MCP_IDLE_MS, MCP_PATH, type McpEndpoint } from '../protocol/mcp.js';
import { fhirSessionOpener } from '../agent/mcp-env.js';
import { POST_MODES, type PostMode } from '../agent/loop.js';

interface ServeFlags {
  world: string;
  seed?: string;
  patients?: string;
  import?: string[];
  port: string;
  host: string;
  strict: boolean;
  skipBilling: boolean;
  rebaseDates: boolean;
  medagentbenchCodes: boolean;
  maxSessions?: string;
  maxSessionBytes?: string;
  maxTotalSessionBytes?: string;
  json: boolean;
  trustForwarded: boolean;
  writableDefault: boolean;
  mcpPostMode: string;
  suite?: string;
  mcpIdleTimeout?: string;
  replicaId?: string;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

/** Whether `host` binds loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return LOOPBACK_HOSTS.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The stderr warning for a non-loopback `--host` (empty for loopback). */
export function exposureWarning(host: string, writableDefault: boolean): string {
  if (isLoopbackHost(host)) return '';
  const writes = writableDefault ? 'writable by anyone, with or without a session' : 'writable in any session a client names';
  return `ehrgym: warning: --host ${host} exposes the FHIR API beyond this machine: it is unauthenticated and ${writes}\n`;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve a world (MedAgentBench replica, synthetic cohort or imported data) as a FHIR R4 server')
    .option('--world <name>', `world to serve: ${WORLD_NAMES.join(' | ')}`, 'medagentbench')
    .option('--seed <n>', 'synthetic world: seed (default 1)')
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default ${DEFAULT_PATIENTS})`)
    .option('--suite <name>', "synthetic world: add a task suite's plantings (ehrgym-clinical: its clinical world) and speak its dialect at /mcp")
    .option('--import <path...>', 'FHIR Bundle (.json) or bulk NDJSON files or folders to add to the world')
    .option('--port <port>', 'TCP port (0 = any free port)', '8080')
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--strict', 'validate POSTed resources as FHIR R4 and require imports to resolve every reference', false)
    .option('--skip-billing', 'do not import Claim / ExplanationOfBenefit resources', false)
    .option('--medagentbench-codes', 'add local lab/vital codes (K, GLU, A1C, MG, BP, …) to imported Observations, values rounded', false)
    .option('--rebase-dates', 'shift imported dates by whole days so the latest is within the 24 h before 2023-11-13T10:15Z', false)
    .option('--max-sessions <n>', `most live sessions; a write opening one more is answered 503 (default ${DEFAULT_MAX_SESSIONS})`)
    .option('--max-session-bytes <n>', `most bytes of stored JSON per session; a write beyond is answered 429 (default ${DEFAULT_MAX_SESSION_BYTES})`)
    .option(
      '--max-total-session-bytes <n>',
      `most bytes of stored JSON in all live sessions together; a write beyond is answered 503 (default ${DEFAULT_MAX_TOTAL_SESSION_BYTES})`,
    )
    .option('--trust-forwarded', 'print links on X-Forwarded-Host/-Proto when requests send them (behind a proxy you trust)', false)
    .option('--writable-default', 'let requests without a session write (into the shared session "default"); read-only by default', false)
    .addOption(
      new Option('--mcp-post-mode <mode>', 'MCP at /mcp: live: POSTs are executed in the MCP session; official: accepted, nothing written')
        .choices([...POST_MODES])
        .default('live'),
    )
    .option('--mcp-idle-timeout <seconds>', `MCP at /mcp: close a session after this many seconds without a request (default ${DEFAULT_MCP_IDLE_MS / 1000})`)
    .option(
      '--replica-id <id>',
      `MCP at /mcp: prefix of the session ids this replica mints, for a load balancer routing on it (default: $${REPLICA_ID_ENV}, else none)`,
    )
    .option('--json', 'print the startup summary as one JSON line', false)
    .addHelpText(
      'after',
      `
Examples:
  ehrgym serve                                          # the MedAgentBench replica at http://127.0.0.1:8080/fhir/
  ehrgym serve --world synthetic --seed 7 --patients 100 --port 8081
  ehrgym serve --world empty --import ./synthea/fhir --medagentbench-codes --rebase-dates
  curl 'http://127.0.0.1:8080/fhir/Patient?identifier=S6534835'
  # MCP (Streamable HTTP) at http://127.0.0.1:8080/mcp: MedAgentBench's tools, one sandbox session per MCP session
  ehrgym eval --agent oracle --fhir-url http://127.0.0.1:8080/fhir/ --out runs/oracle-served   # evaluate against it
`,
    )
    .action(async (o: ServeFlags) => {
      if (!(WORLD_NAMES as readonly string[]).includes(o.world)) {
        throw new CliError(`--world must be one of ${WORLD_NAMES.join(', ')}, got "${o.world}"`);
      }
      const world = o.world as WorldName;
      const port = intFlag('--port', o.port, 0, 65535);
      const seed = o.seed !== undefined ? intFlag('--seed', o.seed, 0, 2 ** 32 - 1) : undefined;
      const patients = o.patients !== undefined ? intFlag('--patients', o.patients, 1, MAX_SYNTHETIC_PATIENTS) : undefined;
      if (world !== 'synthetic' && (seed !== undefined || patients !== undefined)) {
        throw new CliError(`--seed and --patients apply to --world synthetic only (world is ${world})`);
      }
      if (o.suite !== undefined && (world !== 'synthetic' || !suiteNames().includes(o.suite))) {
        throw new CliError(`--suite applies to --world synthetic and names a suite (${suiteNames().join(', ')}), got "${o.suite}" on ${world}`);
      }
      if (!o.host.trim()) throw new CliError('--host must not be empty');
      process.stderr.write(exposureWarning(o.host, o.writableDefault));
      const maxSessions = o.maxSessions !== undefined ? intFlag('--max-sessions', o.maxSessions, 1, Number.MAX_SAFE_INTEGER) : undefined;
      const maxSessionBytes = o.maxSessionBytes !== undefined ? intFlag('--max-session-bytes', o.maxSessionBytes, 1, Number.MAX_SAFE_INTEGER) : undefined;
      const maxTotalSessionBytes =
        o.maxTotalSessionBytes !== undefined ? intFlag('--max-total-session-bytes', o.maxTotalSessionBytes, 1, Number.MAX_SAFE_INTEGER) : undefined;
      const replicaId = replicaIdFlag(o.replicaId);
      const mcpIdleMs = o.mcpIdleTimeout !== undefined ? intFlag('--mcp-idle-timeout', o.mcpIdleTimeout, 1, 2_000_000) * 1000 : DEFAULT_MCP_IDLE_MS;

      let w;
      const progress = o.json || (world === 'empty' && !o.import?.length) ? undefined : loadingProgress(world, patients ?? DEFAULT_PATIENTS);
      try {
        w = await loadWorld({
          world,
          seed,
          patients: world === 'synthetic' ? (patients ?? DEFAULT_PATIENTS) : undefined,
          plant: plantRequest(),
          imports: o.import,
          strict: o.strict,
          skipBilling: o.skipBilling,
          rebaseImports: o.rebaseDates,
          medagentbenchCodes: o.medagentbenchCodes,
          ...(o.suite !== undefined ? { plantings: suitePlantings(o.suite) } : {}),
        });
      } catch (e) {
        progress?.stop(false);
        if (e instanceof ImportError) throw new CliError(`--import ${e.message}`);
        if (e instanceof RangeError) throw new CliError(e.message);
        throw e;
      }
      progress?.stop(true);
      if (maxSessions !== undefined) w.store.maxSessions = maxSessions;
      if (maxSessionBytes !== undefined) w.store.maxSessionBytes = maxSessionBytes;
      if (maxTotalSessionBytes !== undefined) w.store.maxTotalSessionBytes = maxTotalSessionBytes;
      let server;
      // MCP next to /fhir: bound once the server (and its in-process handler) exists; at most --max-sessions sessions
      let mcp: McpEndpoint | undefined;
      try {
        server = await startFhirServer(w.store, {
          host: o.host,
          port,
          strict: o.strict,
          trustForwarded: o.trustForwarded,
          writableDefault: o.writableDefault,
          mounts: {
            [MCP_PATH]: (req) => (mcp ? mcp.fetch(req) : new Response(null, { status: 503 })),
          },
        });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EADDRINUSE') throw new CliError(`--port ${port}: address already in use on ${o.host}`, 1);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new CliError(`--host ${o.host}: cannot bind (${code})`, 1);
        throw e;
      }
      mcp = createMcpEndpoint({
        openSession: fhirSessionOpener(server.handle, { postMode: o.mcpPostMode as PostMode, ...(o.suite !== undefined ? { dialect: EHRGYM_DIALECT } : {}) }),
        maxSessions: w.store.maxSessions,
        idleMs: mcpIdleMs,
        replicaId,
      });
      const mcpUrl = new URL(MCP_PATH, server.url).href;
      // Listen for the stop signals before the URL is printed: a client may act on that line at once.
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            url: server.url,
            mcp: mcpUrl,
            world: w.name,
            seed: w.seed ?? null,
            total: w.total,
            counts: w.counts,
            fingerprint: w.fingerprint,
            imports: w.importReport
              ? {
                  counts: w.importReport.counts,
                  skipped: w.importReport.skipped,
                  unresolved: {
                    total: w.importReport.unresolved.total,
                    dangling: w.importReport.unresolved.dangling,
                    conditional: w.importReport.unresolved.conditional,
                    byTarget: w.importReport.unresolved.byTarget,
                  },
                }
              : null,
            ...(replicaId === undefined ? {} : { replica_id: replicaId }),
          }) + '\n',
        );
      } else {
        const seedText = w.seed !== undefined ? `, seed ${w.seed}` : '';
        process.stdout.write(`ehrgym FHIR R4 server (world ${w.name}${seedText}, ${w.total.toLocaleString('en-US')} resources) at ${server.url}\n`);
        process.stdout.write(`MCP (Streamable HTTP) at ${mcpUrl}\n`);
        if (replicaId !== undefined) process.stdout.write(`replica ${replicaId}: MCP session ids are minted as ${replicaId}.<uuid>\n`);
        if (w.importReport) process.stdout.write(`${summarizeImport(w.importReport)}\n`);
        process.stdout.write('press Ctrl+C to stop\n');
        const base = server.url.endsWith('/') ? server.url : `${server.url}/`;
        process.stdout.write(`try:  curl '${base}${w.patientIds[0] ? `Patient?identifier=${w.patientIds[0]}` : 'metadata'}'\n`);
        if (w.name === 'medagentbench') {
          process.stdout.write(`eval: npx ehrgym eval --agent oracle --fhir-url ${base} --out runs/oracle-served\n`);
        }
      }
      await stopped;
      await mcp.close();
      await server.close();
      if (!o.json) process.stdout.write('ehrgym: server stopped\n');
    });
}

/**
 * World loading on stderr: on a terminal one line that counts the seconds while loading and ends with the load time;
 * otherwise (logs, pipes) one plain line once loaded, so a failed load still prints only its error line.
 */
function loadingProgress(world: WorldName, patients: number): { stop(ok: boolean): void } {
  const what =
    world === 'medagentbench'
      ? 'world medagentbench (500 patients, ~587k resources)'
      : world === 'synthetic'
        ? `world synthetic (${patients} patients)`
        : `world ${world}`;
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  if (!process.stderr.isTTY) {
    return { stop: (ok) => ok && process.stderr.write(`serve: loaded ${what} in ${secs()} s\n`) };
  }
  const draw = () => process.stderr.write(`\r\x1b[Kserve: loading ${what} … ${Math.floor((performance.now() - t0) / 1000)} s`);
  draw();
  const timer = setInterval(draw, 1000);
  return {
    stop(ok) {
      clearInterval(timer);
      process.stderr.write(`\r\x1b[K${ok ? `serve: loaded ${what} in ${secs()} s\n` : ''}`);
    },
  };
}
