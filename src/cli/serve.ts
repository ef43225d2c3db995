/**
 * `ehrgym serve [--world medagentbench|synthetic|empty] [--seed N] [--patients N] [--import PATH...] [--port 8080]
 *               [--host 127.0.0.1] [--strict] [--skip-billing] [--trust-forwarded] [--writable-default] [--json]`
 *
 * Boots a world into the embedded FHIR R4 server, prints its base URL and serves until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { CliError } from './errors.js';
import { loadWorld, WORLD_NAMES, type WorldName } from '../worlds/index.js';
import { ImportError, summarizeImport } from '../worlds/import.js';
import { MAX_SYNTHETIC_PATIENTS } from '../worlds/synthetic.js';
import { startFhirServer } from '../fhir/server.js';

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
  json: boolean;
  // server hardening flags
  trustForwarded: boolean;
  writableDefault: boolean;
}

// ---- server hardening block
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
// ---- end of server hardening block

function intFlag(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new CliError(`${name} must be an integer, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new CliError(`${name} must be between ${min} and ${max}, got ${value}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve a world (MedAgentBench replica, synthetic cohort or imported data) as a FHIR R4 server')
    .option('--world <name>', `world to serve: ${WORLD_NAMES.join(' | ')}`, 'medagentbench')
    .option('--seed <n>', 'synthetic world: seed (default 1)')
    .option('--patients <n>', `synthetic world: number of patients, 1..${MAX_SYNTHETIC_PATIENTS} (default 100)`)
    .option('--import <path...>', 'FHIR Bundle (.json) or bulk NDJSON files or folders to add to the world')
    .option('--port <port>', 'TCP port (0 = any free port)', '8080')
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--strict', 'validate POSTed resources as FHIR R4 and require imports to resolve every reference', false)
    .option('--skip-billing', 'do not import Claim / ExplanationOfBenefit resources', false)
    .option('--medagentbench-codes', 'add local lab/vital codes (K, GLU, A1C, MG, BP, …) to imported Observations, values rounded', false)
    .option('--rebase-dates', 'shift imported dates by whole days so the latest is within the 24 h before 2023-11-13T10:15Z', false)
    .option('--json', 'print the startup summary as one JSON line', false)
    .option('--trust-forwarded', 'print links on X-Forwarded-Host/-Proto when requests send them (behind a proxy you trust)', false)
    .option('--writable-default', 'let requests without a session write (into the shared session "default"); read-only by default', false)
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
      if (!o.host.trim()) throw new CliError('--host must not be empty');
      process.stderr.write(exposureWarning(o.host, o.writableDefault));

      let w;
      try {
        w = await loadWorld({
          world,
          seed,
          patients,
          imports: o.import,
          strict: o.strict,
          skipBilling: o.skipBilling,
          rebaseImports: o.rebaseDates,
          medagentbenchCodes: o.medagentbenchCodes,
        });
      } catch (e) {
        if (e instanceof ImportError) throw new CliError(`--import ${e.message}`);
        if (e instanceof RangeError) throw new CliError(e.message);
        throw e;
      }
      let server;
      try {
        server = await startFhirServer(w.store, {
          host: o.host,
          port,
          strict: o.strict,
          trustForwarded: o.trustForwarded,
          writableDefault: o.writableDefault,
        });
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EADDRINUSE') throw new CliError(`--port ${port}: address already in use on ${o.host}`, 1);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new CliError(`--host ${o.host}: cannot bind (${code})`, 1);
        throw e;
      }
      if (o.json) {
        process.stdout.write(
          JSON.stringify({
            url: server.url,
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
          }) + '\n',
        );
      } else {
        const seedText = w.seed !== undefined ? `, seed ${w.seed}` : '';
        process.stdout.write(`ehrgym FHIR R4 server (world ${w.name}${seedText}, ${w.total.toLocaleString('en-US')} resources) at ${server.url}\n`);
        if (w.importReport) process.stdout.write(`${summarizeImport(w.importReport)}\n`);
        process.stdout.write('press Ctrl+C to stop\n');
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
      if (!o.json) process.stdout.write('ehrgym: server stopped\n');
    });
}
