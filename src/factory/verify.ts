/**
 * `ehrgym verify DIR`: re-execute every row against its world and re-grade it.
 *
 * For each row: load the world named in `meta.world` (its fingerprint must match), replay the row's assistant turns
 * through the official episode loop over HTTP against a loopback server, require the resulting transcript to be
 * byte-identical to the row, and require the evaluation grader to pass it.
 */
import { OFFICIAL_API_BASE, type FhirTransport } from '../fhir/types.js';
import { startFhirServer, type StartedFhirServer } from '../fhir/server.js';
import { httpTransport, inProcessGraderAccess, inProcessTransport } from '../fhir/client.js';
import { runEpisode } from '../agent/loop.js';
import { PolicyAgent } from '../agent/backends/scripted.js';
import { parseAction } from '../agent/parser.js';
import type { FactoryDeps, LoadedWorld } from './deps.js';
import { readAnyCorpus } from './io.js';
import { isToolsRow, type CorpusRow, type ToolsRow } from './types.js';
import { directToolEnvironment, runToolsEpisode } from '../agent/tools-loop.js';
import type { Agent, ToolsReply } from '../agent/types.js';
import { orderedMessage } from './tools-rows.js';
import { taskDialect } from '../protocol/dialect.js';
import { stableStringify } from './canonical.js';
import type { GraderContext, ChatMessage as TranscriptMessage } from '../tasks/types.js';
import { pool, retrying } from './generate.js';

/** An agent that re-sends a tools row's tool calls, turn by turn. */
function toolsReplayAgent(row: ToolsRow): Agent {
  const turns = row.messages.filter((m) => m.role === 'assistant');
  return {
    name: 'replay',
    config: { backend: 'replay' },
    act: async () => {
      throw new Error('a tools row replays in the tools protocol only');
    },
    actTools: async (t): Promise<ToolsReply> => {
      const k = t.messages.filter((m) => m.role === 'assistant').length;
      const m = turns[k];
      if (!m || m.role !== 'assistant') throw new Error('the row has no further assistant turn');
      return { content: m.content, toolCalls: m.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) };
    },
  };
}

export interface VerifyFailure {
  split: string;
  line: number;
  row_id: string;
  reason: string;
}

export interface VerifyReport {
  dir: string;
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  perFamily: Record<string, { passed: number; total: number }>;
  failures: VerifyFailure[];
  skippedReasons: Record<string, number>;
}

export async function verifyCorpus(dir: string, deps: FactoryDeps, opts: { concurrency?: number } = {}): Promise<VerifyReport> {
  const corpus = readAnyCorpus(dir).corpus;
  const suites = [
    ...new Set(
      Object.values(corpus.splits)
        .flat()
        .map((r) => r.meta.world.suite)
        .filter((x): x is string => x !== undefined),
    ),
  ];
  const fams = new Map([...deps.families(), ...suites.flatMap((x) => deps.families(x))].map((f) => [f.id as string, f]));
  const worlds = new Map<string, Promise<{ world: LoadedWorld; server: StartedFhirServer; local: FhirTransport; access: GraderContext } | string>>();
  const getWorld = (row: CorpusRow) => {
    const w = row.meta.world;
    const key = `${w.name}|${w.seed}|${w.patients}|${w.suite ?? ''}`;
    if (!worlds.has(key)) {
      worlds.set(
        key,
        (async () => {
          if (w.name.startsWith('external:')) return 'world is an external server';
          let world: LoadedWorld;
          try {
            world = await deps.loadWorld(w.name, w.seed ?? 0, w.patients, w.suite);
          } catch (e) {
            return `world ${w.name} cannot be loaded (${(e as Error).message.split('\n')[0]})`;
          }
          const server = await startFhirServer(world.store, { port: 0, trustForwarded: true });
          return { world, server, local: inProcessTransport(server.app), access: inProcessGraderAccess(server.app, world.store, OFFICIAL_API_BASE) };
        })(),
      );
    }
    return worlds.get(key)!;
  };
  const report: VerifyReport = { dir, total: 0, passed: 0, failed: 0, skipped: 0, perFamily: {}, failures: [], skippedReasons: {} };
  const items: Array<{ split: string; line: number; row: CorpusRow }> = [];
  for (const [split, rows] of Object.entries(corpus.splits) as Array<[string, CorpusRow[]]>) rows.forEach((row, i) => items.push({ split, line: i + 1, row }));
  try {
    const results = await pool(items, opts.concurrency ?? 8, async ({ split, line, row }) => {
      const fail = (reason: string) => ({ kind: 'fail' as const, f: { split, line, row_id: row.meta.row_id, reason } });
      const fam = fams.get(row.meta.task_family);
      if (!fam) return fail(`unknown family ${row.meta.task_family}`);
      const w = await getWorld(row);
      if (typeof w === 'string') return row.meta.origin === 'expert' ? fail(w) : { kind: 'skip' as const, reason: w };
      if (row.meta.world.fingerprint && w.world.fingerprint !== row.meta.world.fingerprint) {
        return fail(`world fingerprint ${w.world.fingerprint} differs from the recorded ${row.meta.world.fingerprint}`);
      }
      if (isToolsRow(row)) {
        // re-execute the row's tool calls in the tools protocol (live POSTs) in its session; the transcript must be
        // byte-identical and the grader must pass the episode's text history
        if (!row.meta.session) return fail('a tools row records no session');
        const remote = retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: w.server.url }, session: row.meta.session }));
        const res = await runToolsEpisode({
          index: line - 1,
          task: row.meta.task,
          agent: toolsReplayAgent(row),
          env: directToolEnvironment({ fhir: remote, postMode: 'live', dialect: taskDialect(row.meta.task) }),
          apiBase: OFFICIAL_API_BASE,
        });
        w.world.store.dropSession(row.meta.session);
        if (res.agentError) return fail(`replay: ${res.agentError}`);
        const got = (res.output.messages ?? []).map((m: TranscriptMessage) => orderedMessage(m as ToolsRow['messages'][number]));
        if (got.length !== row.messages.length) return fail(`replay produced ${got.length} messages, the row has ${row.messages.length}`);
        for (let i = 0; i < got.length; i++)
          if (stableStringify(got[i]) !== stableStringify(orderedMessage(row.messages[i]!)))
            return fail(`message ${i} differs from what the harness sends/receives now`);
        if (res.output.status !== 'completed') return fail(`episode status ${res.output.status}`);
        const g = await fam.grade(row.meta.task, res.output, w.access);
        return g.correct ? { kind: 'pass' as const } : fail(`grader: ${g.exception ?? g.checks.find((c) => !c.pass)?.name ?? 'incorrect'}`);
      }
      if (row.meta.origin === 'collected' || !row.meta.session) {
        // a model rollout: its searchset ids come from the eval run's session; re-grade the recorded episode
        const hist = row.messages.map((m) => ({ role: m.role === 'assistant' ? ('agent' as const) : ('user' as const), content: m.content }));
        const last = row.messages[row.messages.length - 1]!.content;
        const act = parseAction(last);
        const out = { index: line - 1, status: 'completed', result: act.kind === 'finish' ? act.result : null, history: hist };
        const g = await fam.grade(row.meta.task, out, w.access);
        return g.correct ? { kind: 'pass' as const } : fail(`grader: ${g.exception ?? g.checks.find((c) => !c.pass)?.name ?? 'incorrect'}`);
      }
      const session = row.meta.session;
      const remote = retrying(httpTransport({ map: { from: OFFICIAL_API_BASE, to: w.server.url }, session }));
      const turns = row.messages.filter((m) => m.role === 'assistant').map((m) => m.content);
      const agent = new PolicyAgent('replay', (_task, history) => {
        const k = history.filter((h) => h.role === 'agent').length;
        if (k >= turns.length) throw new Error('the row has no further assistant turn');
        return turns[k]!;
      });
      const res = await runEpisode({ index: line - 1, task: row.meta.task, agent, fhir: remote, apiBase: OFFICIAL_API_BASE });
      w.world.store.dropSession(session);
      if (res.agentError) return fail(`replay: ${res.agentError}`);
      const hist = res.output.history ?? [];
      if (hist.length !== row.messages.length) return fail(`replay produced ${hist.length} turns, the row has ${row.messages.length}`);
      for (let i = 0; i < hist.length; i++) {
        if (hist[i]!.content !== row.messages[i]!.content) return fail(`turn ${i} differs from what the harness sends/receives now`);
      }
      if (res.output.status !== 'completed') return fail(`episode status ${res.output.status}`);
      const g = await fam.grade(row.meta.task, res.output, w.access);
      if (!g.correct) return fail(`grader: ${g.exception ?? g.checks.find((c) => !c.pass)?.name ?? 'incorrect'}`);
      return { kind: 'pass' as const };
    });
    results.forEach((r, i) => {
      const fam = items[i]!.row.meta.task_family;
      const pf = (report.perFamily[fam] ??= { passed: 0, total: 0 });
      report.total++;
      if (r.kind === 'skip') {
        report.skipped++;
        report.skippedReasons[r.reason] = (report.skippedReasons[r.reason] ?? 0) + 1;
        return;
      }
      pf.total++;
      if (r.kind === 'pass') {
        report.passed++;
        pf.passed++;
      } else {
        report.failed++;
        report.failures.push(r.f);
      }
    });
  } finally {
    for (const w of worlds.values()) {
      const x = await w;
      if (typeof x !== 'string') await x.server.close();
    }
  }
  const sorted: VerifyReport['perFamily'] = {};
  for (const k of Object.keys(report.perFamily).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))) sorted[k] = report.perFamily[k]!;
  report.perFamily = sorted;
  return report;
}
