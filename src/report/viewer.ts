/**
 * `ehrgym view`: a local web viewer over run folders. The runs are read once into memory; the server answers only
 * its own page and a JSON API over that data (no file system access per request, so no path can reach a file).
 */
import { taskDialect } from '../protocol/dialect.js';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { analyzeRun, compareFamilies } from './analyze.js';
import { BEHAVIOURS, THINK } from './behaviours.js';
import { familyName } from './families.js';
import { episodeSteps } from './history.js';
import { toolTranscript } from './transcript.js';
import { loadRunsByTrial } from './load.js';
import type { Finding, LoadedRun, RunAnalysis } from './types.js';
import { VIEWER_PAGE } from './viewer-page.js';

const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** The trajectory of one task in one run, shaped for display. */
export function trajectory(run: LoadedRun, analysis: RunAnalysis, taskId: string) {
  const t = run.tasks.find((x) => x.graded.id === taskId);
  if (!t) return undefined;
  const history = t.output.history ?? [];
  const byTurn = new Map(episodeSteps(t.output, { put: taskDialect(taskId).put }).map((s) => [s.turn, s]));
  const replyOf = new Map<number, number>();
  for (const s of byTurn.values()) if (s.replyIndex !== undefined) replyOf.set(s.replyIndex, s.turn);
  const findings: Finding[] = analysis.findings[taskId] ?? [];
  const items = history.map((h, i) => {
    const base = { index: i, role: h.role, content: h.content, findings: findings.filter((f) => f.turn === i).map((f) => f.behaviour) };
    const st = byTurn.get(i);
    if (st) {
      return {
        ...base,
        kind: st.toolError !== undefined ? 'tool-error' : st.action.kind,
        url: st.action.url ?? null,
        payload: st.action.kind === 'POST' || st.action.kind === 'PUT' ? (st.payload !== undefined ? pretty(st.payload) : null) : null,
        postAccepted: st.postAccepted ?? null,
        result: st.action.result ?? null,
      };
    }
    const from = replyOf.get(i);
    if (from !== undefined) {
      const s = byTurn.get(from)!;
      if (s.action.kind === 'GET') {
        if (s.getBody !== undefined)
          return { ...base, kind: 'get-response', body: s.getJson !== undefined ? pretty(s.getJson) : s.getBody, json: s.getJson !== undefined };
        return { ...base, kind: 'get-error', body: s.getError ?? h.content };
      }
      if (s.action.kind === 'POST' || s.action.kind === 'PUT') return { ...base, kind: s.postAccepted ? 'post-accepted' : 'post-rejected' };
      if (s.toolError !== undefined) return { ...base, kind: 'tool-error-answer' };
    }
    return { ...base, kind: i === 0 ? 'prompt' : 'message' };
  });
  // tools / mcp: the replies as the model wrote them, each call with the history items of its action and answer
  const transcript = toolTranscript(t.output);
  const at = (i: number | undefined) => (i === undefined ? null : (items[i] ?? null));
  const tools = transcript
    ? {
        aligned: transcript.aligned,
        recoveredToolCalls: typeof t.output.recoveredToolCalls === 'number' ? t.output.recoveredToolCalls : 0,
        turns: transcript.turns.map((turn) => {
          // a reasoning block beside the calls is found at the first call's item: shown on the reply
          const think = turn.calls.length > 0 && turn.content !== null && THINK.test(turn.content);
          const thinkAt = think ? turn.calls.find((c) => c.turn !== undefined)?.turn : undefined;
          return {
            ...turn,
            findings: turn.turn !== undefined ? (items[turn.turn]?.findings ?? []) : think ? ['think'] : [],
            calls: turn.calls.map((c) => ({
              ...c,
              findings: [...(at(c.turn)?.findings ?? []).filter((b) => !(b === 'think' && c.turn === thinkAt)), ...(at(c.resultIndex)?.findings ?? [])],
              actionItem: at(c.turn),
              resultItem: at(c.resultIndex),
            })),
          };
        }),
      }
    : null;
  return {
    run: run.label,
    id: t.graded.id,
    family: t.graded.family,
    index: t.index,
    mrn: t.info.mrn ?? null,
    instruction: t.info.instruction ?? null,
    context: t.info.context ?? null,
    status: t.graded.status,
    correct: t.graded.correct,
    result: t.output.result,
    rounds: t.graded.rounds,
    promptTokens: t.graded.promptTokens ?? null,
    completionTokens: t.graded.completionTokens ?? null,
    grade: t.graded.grade,
    findings,
    protocol: run.protocol,
    items,
    tools,
  };
}

/** The Hono app serving the viewer for already loaded runs. */
export function createViewerApp(runs: LoadedRun[]): Hono {
  const analyses = runs.map(analyzeRun);
  const app = new Hono();
  const ids: string[] = [];
  const meta = new Map<string, { family: string; index: number }>();
  for (const r of runs) {
    for (const t of r.tasks) {
      if (!meta.has(t.graded.id)) {
        meta.set(t.graded.id, { family: t.graded.family, index: t.index });
        ids.push(t.graded.id);
      }
    }
  }
  ids.sort((a, b) => compareFamilies(meta.get(a)!.family, meta.get(b)!.family) || meta.get(a)!.index - meta.get(b)!.index);
  const taskTable = ids.map((id) => ({
    id,
    family: meta.get(id)!.family,
    runs: runs.map((r, i) => {
      const t = r.tasks.find((x) => x.graded.id === id);
      if (!t) return null;
      const f = analyses[i]!.findings[id] ?? [];
      return { correct: t.graded.correct, status: t.graded.status, behaviours: [...new Set(f.map((x) => x.behaviour))] };
    }),
  }));
  const families = [...new Set(ids.map((id) => meta.get(id)!.family))];
  const statuses = [...new Set(runs.flatMap((r) => r.tasks.map((t) => t.graded.status)))].sort();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
  });
  app.get('/', (c) => {
    c.header('Content-Security-Policy', CSP);
    return c.html(VIEWER_PAGE);
  });
  app.get('/api/runs', (c) =>
    c.json(
      analyses.map((a, i) => ({
        id: i,
        label: a.label,
        agent: a.agent,
        protocol: a.protocol,
        taskSet: a.taskSet,
        total: a.scores.total,
        correct: a.scores.correct,
        successRate: a.scores.successRate,
        ci95: a.scores.ci95,
        querySR: a.scores.query.sr,
        queryTotal: a.scores.query.total,
        actionSR: a.scores.action.sr,
        actionTotal: a.scores.action.total,
        perFamily: a.scores.perFamily,
        status: a.scores.status,
        behaviours: Object.fromEntries(a.behaviours.map((b) => [b.behaviour, b.tasks])),
        tools: a.tools ?? null,
      })),
    ),
  );
  const familyNames = Object.fromEntries(families.flatMap((f) => (familyName(f) ? [[f, familyName(f)]] : [])));
  app.get('/api/tasks', (c) => c.json({ families, familyNames, statuses, behaviours: BEHAVIOURS, runs: analyses.map((a) => a.label), tasks: taskTable }));
  app.get('/api/runs/:run/tasks/:id', (c) => {
    const runParam = c.req.param('run');
    if (!/^\d+$/.test(runParam)) return c.json({ error: 'no such run' }, 404);
    const i = Number(runParam);
    const run = runs[i];
    if (!run) return c.json({ error: 'no such run' }, 404);
    const tr = meta.has(c.req.param('id')) ? trajectory(run, analyses[i]!, c.req.param('id')) : undefined;
    if (!tr) return c.json({ error: 'no such task in this run' }, 404);
    return c.json(tr);
  });
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  app.onError((_err, c) => c.json({ error: 'internal error' }, 500));
  return app;
}

export interface ViewerOptions {
  port?: number;
  host?: string;
}

export interface RunningViewer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Load the run folders and serve the viewer (default 127.0.0.1). Port 0 picks a free port. */
export async function startViewer(dirsOrRuns: string[] | LoadedRun[], opts: ViewerOptions = {}): Promise<RunningViewer> {
  const runs = typeof dirsOrRuns[0] === 'string' ? loadRunsByTrial(dirsOrRuns as string[]) : (dirsOrRuns as LoadedRun[]);
  const app = createViewerApp(runs);
  const host = opts.host ?? '127.0.0.1';
  let server: ServerType;
  const port = await new Promise<number>((resolvePort, reject) => {
    server = serve({ fetch: app.fetch, port: opts.port ?? 8090, hostname: host }, (info: AddressInfo) => resolvePort(info.port));
    server.once('error', reject);
  });
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}
