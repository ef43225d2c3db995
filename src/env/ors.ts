/**
 * The Open Reward Standard surface (HTTP + server-sent events), as the reference server of `ors-sdk` 0.1.0 answers it
 * (openrewardstandard/python-sdk @ a3994084a46ba23b5871504c603dc39669134927, `src/ors/server.py`, `_reconnect.py`,
 * `types.py`), for clients such as `ors.client` and TRL's `OpenRewardSpec` (docs/env.md, "ORS").
 *
 * Differences, all documented: `/create` checks a task spec at once (400) instead of failing the later calls; at
 * `maxSessions` it answers 503 `{detail}` (the reference has no cap); the SSE pieces of a call result never start with
 * whitespace (the reference client strips it from each `data:` line, so a piece may be shorter than 4,096 characters);
 * `GET /health` answers OpenEnv's `{"status":"healthy"}` (both clients only check the status code).
 */
import { randomUUID } from 'node:crypto';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { type EnvCore, type EnvSession, CapacityError, ENV_NAME, TaskRefError, type StepOutcome } from './core.js';
import { intValue, isPlainObject, readJsonBody, validateModel, type FieldSpec } from './http.js';
import { publicTask } from './tasks.js';
import { pyJsonDumps } from '../tasks/pysem.js';

/** SSE pieces of a call result (characters), as the reference server. */
export const CHUNK_SIZE = 4096;
/** A finished call's result can be streamed again with its `task_id` for this long, as the reference server. */
export const LINGER_MS = 60_000;
/** Most call results kept for resumption at once (oldest dropped first). */
export const MAX_LINGERING = 10_000;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** First path segments that are not an environment name (everything else is redirected to the first environment). */
export const ROOT_PATHS = new Set([
  'health',
  'ping',
  'list_environments',
  'create',
  'delete',
  'create_session',
  'delete_session',
  'schema',
  'metadata',
  'mcp',
  'ws',
]);

/** One SSE event as sse-starlette writes it (CRLF line ends; one `data:` line per line of the data). */
export function sseEvent(event: string, data: string): string {
  return `event: ${event}\r\n${data
    .split(/\r\n|\r|\n/)
    .map((l) => `data: ${l}\r\n`)
    .join('')}\r\n`;
}

/** The pieces of a result: at most CHUNK_SIZE characters, none starting with whitespace. */
export function chunks(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let end = Math.min(text.length, i + CHUNK_SIZE);
    while (end < text.length && end > i + 1 && /\s/.test(text[end]!)) end--;
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

/** A call result as a stream body: `task_id`, the `chunk`s, the last piece as `end`. */
export function resultStream(taskId: string, result: string): string {
  const parts = chunks(result);
  return sseEvent('task_id', taskId) + parts.map((p, i) => sseEvent(i === parts.length - 1 ? 'end' : 'chunk', p)).join('');
}

/** RunToolOutput as Pydantic's compact `model_dump_json` (field order of the models, reward a float). */
export function runToolOutput(r: StepOutcome, taskId: string | null): string {
  if (!r.ok) return `{"ok":false,"error":${JSON.stringify(r.error)}}`;
  const blocks = JSON.stringify([{ text: r.text, detail: null, type: 'text' }]);
  const metadata = r.finished
    ? JSON.stringify({ task_id: taskId, reward_components: r.components, explanation: r.explanation })
    : JSON.stringify({ task_id: taskId });
  const reward = r.reward === null ? 'null' : Number.isInteger(r.reward) ? `${r.reward}.0` : String(r.reward);
  return `{"ok":true,"output":{"blocks":${blocks},"metadata":${metadata},"reward":${reward},"finished":${r.finished}}}`;
}

const detail = (c: Context, status: number, message: unknown) => c.json({ detail: message }, status as 400);

/** Redirect a path whose first segment is neither a root path nor an environment to the first environment (308). */
export function redirectToDefaultEnv(): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    const first = url.pathname
      .replace(/^\/+|\/+$/g, '')
      .split('/', 1)[0]!
      .toLowerCase();
    if (!ROOT_PATHS.has(first) && first !== ENV_NAME) return c.redirect(`/${ENV_NAME}${url.pathname}${url.search}`, 308);
    return next();
  };
}

const CREATE_FIELDS: Record<string, FieldSpec> = {
  env_name: { kind: 'str' },
  task_spec: { kind: 'object' },
  split: { kind: 'str' },
  index: { kind: 'int' },
  secrets: { kind: 'object' },
};

export function registerOrs(app: Hono, core: EnvCore): void {
  const lingering = new Map<string, { result: string; until: number }>();
  const remember = (id: string, result: string) => {
    const now = Date.now();
    for (const [k, v] of lingering) {
      if (v.until > now && lingering.size < MAX_LINGERING) break;
      lingering.delete(k);
    }
    lingering.set(id, { result, until: now + LINGER_MS });
  };

  const sidOf = (c: Context): string | undefined => {
    const h = c.req.header('x-session-id');
    return h && h.trim() !== '' ? h.trim() : undefined;
  };
  const envOk = (c: Context) => c.req.param('env')!.toLowerCase() === ENV_NAME;
  const unknownEnv = (c: Context) => detail(c, 404, `unknown environment '${c.req.param('env')}'`);
  /** The session a request names, or the error response. */
  const session = (c: Context): EnvSession | Response => {
    const sid = sidOf(c);
    if (sid === undefined) return detail(c, 400, 'X-Session-ID header is required');
    const s = core.get(sid, 'ors');
    if (!s) return detail(c, 404, 'Active environment not found');
    core.touch(s);
    return s;
  };
  /** A body for a model; the error response when it is not one. */
  const body = async (c: Context, fields: Record<string, FieldSpec>): Promise<Record<string, unknown> | Response> => {
    const b = await readJsonBody(c);
    if (!b.ok) return c.json(b.body as object, b.status);
    const issues = validateModel(b.value, fields);
    if (issues.length > 0) return c.json({ detail: issues }, 422);
    return b.value as Record<string, unknown>;
  };
  const refError = (c: Context, e: unknown): Response => {
    if (e instanceof TaskRefError) return detail(c, 400, e.message);
    throw e;
  };

  app.post('/ping', (c) => {
    const s = session(c);
    return s instanceof Response ? s : c.json({ status: 'ok' });
  });

  app.get('/list_environments', (c) => c.json([ENV_NAME]));

  app.get('/:env/tools', (c) => (envOk(c) ? c.json({ tools: toolList(core) }) : unknownEnv(c)));

  app.get('/:env/splits', (c) => (envOk(c) ? c.json(core.splitList().map((s) => ({ name: s.name, type: s.type }))) : unknownEnv(c)));

  app.post('/:env/tasks', async (c) => {
    if (!envOk(c)) return unknownEnv(c);
    const b = await body(c, { split: { kind: 'str', required: true } });
    if (b instanceof Response) return b;
    try {
      return c.json({ tasks: core.split(b.split as string).tasks.map(publicTask), env_name: c.req.param('env') });
    } catch (e) {
      return refError(c, e);
    }
  });

  app.post('/:env/num_tasks', async (c) => {
    if (!envOk(c)) return unknownEnv(c);
    const b = await body(c, { split: { kind: 'str', required: true } });
    if (b instanceof Response) return b;
    try {
      return c.json({ num_tasks: core.split(b.split as string).tasks.length });
    } catch (e) {
      return refError(c, e);
    }
  });

  app.post('/:env/task', async (c) => {
    if (!envOk(c)) return unknownEnv(c);
    const b = await body(c, { split: { kind: 'str', required: true }, index: { kind: 'int', required: true } });
    if (b instanceof Response) return b;
    try {
      return c.json({ task: publicTask(core.task(b.split as string, intValue(b.index)!)) });
    } catch (e) {
      return refError(c, e);
    }
  });

  app.post('/:env/task_range', async (c) => {
    if (!envOk(c)) return unknownEnv(c);
    const b = await body(c, { split: { kind: 'str', required: true }, start: { kind: 'int' }, stop: { kind: 'int' } });
    if (b instanceof Response) return b;
    try {
      return c.json({ tasks: core.taskRange(b.split as string, intValue(b.start) ?? null, intValue(b.stop) ?? null).map(publicTask) });
    } catch (e) {
      return refError(c, e);
    }
  });

  app.post('/create_session', () => new Response(sseEvent('task_id', core.mintId()) + sseEvent('end', ''), { headers: { ...SSE_HEADERS } }));

  app.post('/delete_session', (c) => {
    const sid = sidOf(c);
    return sid === undefined ? detail(c, 400, 'X-Session-ID header is required') : c.json({ sid });
  });

  app.post('/create', async (c) => {
    const b = await readJsonBody(c);
    if (!b.ok) return c.json(b.body as object, b.status);
    const sid = sidOf(c);
    if (sid === undefined) return detail(c, 400, 'X-Session-ID header is required');
    const issues = validateModel(b.value, CREATE_FIELDS);
    const v = (isPlainObject(b.value) ? b.value : {}) as Record<string, unknown>;
    if (issues.length === 0) {
      const hasSpec = v.task_spec !== undefined && v.task_spec !== null;
      const hasSplit = v.split !== undefined && v.split !== null;
      const hasIndex = v.index !== undefined && v.index !== null;
      const problem =
        hasSpec === (hasSplit && hasIndex)
          ? 'Provide either task_spec or both split and index, not both/neither'
          : hasSplit !== hasIndex
            ? 'split and index must both be provided together'
            : undefined;
      if (problem) issues.push({ type: 'value_error', loc: ['body'], msg: `Value error, ${problem}`, input: v });
    }
    if (issues.length > 0) return c.json({ detail: issues }, 422);
    if (core.has(sid, 'ors')) return detail(c, 400, 'Session already exists');
    if (typeof v.env_name === 'string' && v.env_name.toLowerCase() !== ENV_NAME) return detail(c, 404, `unknown environment '${v.env_name}'`);
    const ref = v.task_spec != null ? { spec: v.task_spec } : { split: v.split as string, index: intValue(v.index)! };
    let s: EnvSession;
    try {
      core.checkRef(ref);
      s = core.open(sid, 'ors');
    } catch (e) {
      if (e instanceof CapacityError) return detail(c, 503, e.message);
      return refError(c, e);
    }
    try {
      await core.reset(s, ref);
    } catch (e) {
      await core.close(s);
      return refError(c, e);
    }
    return c.json({ sid });
  });

  app.post('/delete', async (c) => {
    const sid = sidOf(c);
    if (sid === undefined) return detail(c, 400, 'X-Session-ID header is required');
    const s = core.get(sid, 'ors');
    if (s) await core.close(s);
    return c.json({ sid });
  });

  app.get('/:env/prompt', (c) => {
    const s = session(c);
    if (s instanceof Response) return s;
    if (!s.episode) return detail(c, 404, 'Active environment not found');
    return c.json([{ text: s.episode.prompt, detail: null, type: 'text' }]);
  });

  app.get('/:env/task_tools', (c) => {
    const s = session(c);
    return s instanceof Response ? s : c.json({ tools: toolList(core, s.episode) });
  });

  app.post('/:env/call', async (c) => {
    const b = await readJsonBody(c);
    if (!b.ok) return c.json(b.body as object, b.status);
    const s = session(c);
    if (s instanceof Response) return s;
    const issues = validateModel(b.value, { name: { kind: 'str', required: true }, input: { kind: 'object', required: true }, task_id: { kind: 'str' } });
    if (issues.length > 0) return c.json({ detail: issues }, 422);
    const v = b.value as { name: string; input: Record<string, unknown>; task_id?: string | null };
    if (typeof v.task_id === 'string') {
      const hit = lingering.get(v.task_id);
      const body = hit && hit.until > Date.now() ? resultStream(v.task_id, hit.result) : sseEvent('error', 'unknown task_id');
      return new Response(body, { headers: { ...SSE_HEADERS } });
    }
    const callId = randomUUID().replace(/-/g, '');
    const taskId = s.episode?.taskId ?? null;
    const out = await core.call(s, v.name, pyJsonDumps(v.input));
    const result = runToolOutput(out, taskId);
    remember(callId, result);
    return new Response(resultStream(callId, result), { headers: { ...SSE_HEADERS } });
  });
}

/** The tools of the session's episode's dialect (MedAgentBench's without one). */
function toolList(core: EnvCore, ep?: Parameters<EnvCore['tools']>[0]) {
  return core.tools(ep).map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters }));
}
