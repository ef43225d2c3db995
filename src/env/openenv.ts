/**
 * The OpenEnv surface, as OpenEnv's `HTTPEnvServer` answers in production mode (meta-pytorch/OpenEnv @
 * 685de411e5f77286b0fd94798d42c4467cf8a1bc, `src/openenv/core/env_server/{http_server,types,mcp_types,serialization}.py`):
 * `GET /health`, `/schema`, `/metadata`; `WS /ws` (reset / step / state / close / mcp messages; one environment session
 * per connection); `POST /mcp`, plain JSON-RPC 2.0 in OpenEnv's dialect (no MCP handshake). docs/env.md, "OpenEnv".
 *
 * The action is OpenEnv's `CallToolAction` (`{type: "call_tool", tool_name, arguments}`) or `ListToolsAction`; the
 * observation extends `CallToolObservation` (`tool_name`, `result`, `error`) with the episode's `task_id`, `prompt`,
 * `tools`, `reward_components` and `explanation` — fields of the observation, because OpenEnv's `serialize_observation`
 * drops `metadata` from the wire. Reset data: `{split, index}`, `{task_id}`, or neither (the next `train` task in
 * order); other keys are ignored, as OpenEnv filters the kwargs `reset()` does not take.
 *
 * Differences, documented: `tools/call` over `POST /mcp` needs a `session_id` (a call without one would have no
 * episode); `openenv/session/create` also takes the reset keys and answers the episode's `task_id` and `prompt` beside
 * `session_id`. The stateless simulation-mode `POST /reset`, `POST /step` and `GET /state` are not served.
 */
import type { Hono } from 'hono';
import type { RawData, WebSocket } from 'ws';
import { VERSION } from '../version.js';
import { type EnvCore, type EnvSession, type StepOutcome, type TaskRef, CapacityError, ENV_NAME, TaskRefError } from './core.js';
import { intValue, isPlainObject, parseJsonText, plain, readJsonBody } from './http.js';
import { pyJsonDumps } from '../tasks/pysem.js';

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;
export const SERVER_ERROR = -32000;

const DEFAULT_MESSAGES: Record<number, string> = {
  [PARSE_ERROR]: 'Parse error',
  [INVALID_REQUEST]: 'Invalid Request',
  [METHOD_NOT_FOUND]: 'Method not found',
  [INVALID_PARAMS]: 'Invalid params',
  [INTERNAL_ERROR]: 'Internal error',
  [SERVER_ERROR]: 'Server error',
};

type RpcId = string | number | null;
interface RpcResponse {
  jsonrpc: '2.0';
  id: RpcId;
  result?: unknown;
  error?: { code: number; message: string; data: unknown };
}

function rpcError(code: number, message: string | undefined, id: RpcId, data: unknown = null): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message: message ?? DEFAULT_MESSAGES[code]!, data } };
}

function rpcResult(result: unknown, id: RpcId): RpcResponse {
  return { jsonrpc: '2.0', id, result };
}

// ------------------------------------------------------------------------------------------------ schemas

const TOOL_SCHEMA = {
  type: 'object',
  title: 'Tool',
  properties: { name: { type: 'string' }, description: { type: 'string' }, input_schema: { type: 'object' } },
  required: ['name', 'description', 'input_schema'],
};

export const ACTION_SCHEMA = {
  title: 'MedAgentBenchAction',
  description: "OpenEnv's MCP actions: call one of the tools (CallToolAction) or list them (ListToolsAction).",
  oneOf: [
    {
      type: 'object',
      title: 'CallToolAction',
      additionalProperties: false,
      properties: {
        type: { const: 'call_tool', default: 'call_tool' },
        tool_name: { type: 'string', description: 'Name of the tool to call' },
        arguments: { type: 'object', description: 'Arguments to pass to the tool', default: {} },
        metadata: { type: 'object', default: {} },
      },
      required: ['tool_name'],
    },
    {
      type: 'object',
      title: 'ListToolsAction',
      additionalProperties: false,
      properties: { type: { const: 'list_tools' }, metadata: { type: 'object', default: {} } },
      required: ['type'],
    },
  ],
};

export const OBSERVATION_SCHEMA = {
  type: 'object',
  title: 'MedAgentBenchObservation',
  description:
    "OpenEnv's CallToolObservation with the episode's fields. reward is 1 or 0 when done (null before); reward_components are the grader's named checks.",
  properties: {
    done: { type: 'boolean', default: false },
    reward: { anyOf: [{ type: 'number' }, { type: 'null' }], default: null },
    metadata: { type: 'object', default: {} },
    tool_name: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    result: {
      anyOf: [
        {
          type: 'object',
          properties: {
            content: { type: 'array', items: { type: 'object', properties: { type: { const: 'text' }, text: { type: 'string' } } } },
            structured_content: { type: 'object' },
            meta: { type: 'null' },
            data: { type: 'string' },
            is_error: { type: 'boolean' },
          },
        },
        { type: 'null' },
      ],
      default: null,
    },
    error: {
      anyOf: [
        {
          type: 'object',
          properties: {
            error_type: { enum: ['execution_error', 'invalid_args', 'transport_error', 'tool_not_found', 'timeout'] },
            message: { type: 'string' },
          },
          required: ['error_type', 'message'],
        },
        { type: 'null' },
      ],
      default: null,
    },
    tools: { anyOf: [{ type: 'array', items: TOOL_SCHEMA }, { type: 'null' }], default: null },
    task_id: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    split: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    index: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
    prompt: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    reward_components: { anyOf: [{ type: 'object', additionalProperties: { type: 'boolean' } }, { type: 'null' }], default: null },
    explanation: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
  },
};

export const STATE_SCHEMA = {
  type: 'object',
  title: 'MedAgentBenchState',
  additionalProperties: true,
  properties: {
    episode_id: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    step_count: { type: 'integer', minimum: 0, default: 0 },
    task_id: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    split: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    index: { anyOf: [{ type: 'integer' }, { type: 'null' }], default: null },
    done: { type: 'boolean', default: false },
    reward: { anyOf: [{ type: 'number' }, { type: 'null' }], default: null },
  },
};

// ------------------------------------------------------------------------------------------------ observations

/** The tools of an episode's dialect (MedAgentBench's without one). */
function toolList(core: EnvCore, inputKey: 'input_schema' | 'inputSchema', ep?: Parameters<EnvCore['tools']>[0]) {
  return core.tools(ep).map((t) => ({ name: t.name, description: t.description, [inputKey]: t.parameters }));
}

/** The reset observation: the prompt and the tools; no reward yet. */
function resetObservation(core: EnvCore, s: EnvSession): Record<string, unknown> {
  const ep = s.episode!;
  return {
    observation: {
      tool_name: null,
      result: null,
      error: null,
      tools: toolList(core, 'input_schema', ep),
      task_id: ep.taskId,
      split: ep.split,
      index: ep.index,
      prompt: ep.prompt,
      reward_components: null,
      explanation: null,
    },
    reward: null,
    done: false,
  };
}

function callResult(text: string, isError: boolean, extra: Record<string, unknown> = {}) {
  return { content: [{ type: 'text', text }], structured_content: { result: text, ...extra }, meta: null, data: text, is_error: isError };
}

/** A step's observation (CallToolObservation plus the episode's fields). */
function stepObservation(s: EnvSession, toolName: string, r: StepOutcome): Record<string, unknown> {
  const ep = s.episode;
  const base = { tool_name: toolName, tools: null, task_id: ep?.taskId ?? null, split: ep?.split ?? null, index: ep?.index ?? null, prompt: null };
  if (!r.ok) {
    const errorType = r.errorType === 'finished' ? 'execution_error' : r.errorType;
    return {
      observation: {
        ...base,
        result: null,
        error: { error_type: errorType, message: r.error },
        reward_components: ep?.components ?? null,
        explanation: ep?.explanation ?? null,
      },
      reward: r.errorType === 'finished' ? (ep?.reward ?? null) : null,
      done: ep?.finished ?? false,
    };
  }
  return {
    observation: { ...base, result: callResult(r.text, false), error: null, reward_components: r.components, explanation: r.explanation },
    reward: r.reward,
    done: r.finished,
  };
}

/** The WebSocket message answering a step: `{"type": "observation", "data": {observation, reward, done}}`. */
export function stepMessage(s: EnvSession, toolName: string, r: StepOutcome): string {
  if (!r.ok) return JSON.stringify({ type: 'observation', data: stepObservation(s, toolName, r) });
  // the same bytes as JSON.stringify of the observation, with the text (carried three times by CallToolResult)
  // escaped once: the escaping of a search result is most of the cost of the message
  const ep = s.episode;
  const j = JSON.stringify;
  const text = j(r.text);
  const result = `{"content":[{"type":"text","text":${text}}],"structured_content":{"result":${text}},"meta":null,"data":${text},"is_error":false}`;
  const observation =
    `{"tool_name":${j(toolName)},"tools":null,"task_id":${j(ep?.taskId ?? null)},"split":${j(ep?.split ?? null)},"index":${j(ep?.index ?? null)},` +
    `"prompt":null,"result":${result},"error":null,"reward_components":${j(r.components)},"explanation":${j(r.explanation)}}`;
  return `{"type":"observation","data":{"observation":${observation},"reward":${j(r.reward)},"done":${r.finished}}}`;
}

/** `stepMessage` through JSON.stringify alone (what the fast path must equal). */
export function stepMessageSlow(s: EnvSession, toolName: string, r: StepOutcome): string {
  return JSON.stringify({ type: 'observation', data: stepObservation(s, toolName, r) });
}

function stateOf(s: EnvSession): Record<string, unknown> {
  const ep = s.episode;
  return {
    episode_id: ep ? `${s.id}/${s.episodes}` : null,
    step_count: ep?.steps ?? 0,
    task_id: ep?.taskId ?? null,
    split: ep?.split ?? null,
    index: ep?.index ?? null,
    done: ep?.finished ?? false,
    reward: ep?.reward ?? null,
  };
}

/** Reset keys → the episode's task: `{split, index}`, `{task_id}`, or neither (next train task). */
function resetRef(core: EnvCore, data: Record<string, unknown>): TaskRef {
  if (typeof data.task_id === 'string') return { taskId: data.task_id };
  if (data.split !== undefined || data.index !== undefined) {
    if (typeof data.split !== 'string') throw new TaskRefError('split', 'reset: "split" must be a string (with "index")');
    const index = intValue(data.index);
    if (index === undefined) throw new TaskRefError('index', 'reset: "index" must be an integer (with "split")');
    return { split: data.split, index };
  }
  return core.nextTrainRef();
}

// ------------------------------------------------------------------------------------------------ JSON-RPC

function parseRpc(v: unknown): { ok: true; method: string; params: Record<string, unknown>; id: RpcId } | { ok: false; response: RpcResponse } {
  const id: RpcId = isPlainObject(v) && (typeof v.id === 'string' || typeof v.id === 'number') ? (v.id as string | number) : null;
  const bad = (why: string) => ({ ok: false as const, response: rpcError(INVALID_REQUEST, `Invalid request: ${why}`, null) });
  if (!isPlainObject(v)) return bad('the request must be a JSON object');
  for (const k of Object.keys(v)) if (!['jsonrpc', 'method', 'params', 'id'].includes(k)) return bad(`extra field "${k}" is not permitted`);
  if (v.jsonrpc !== '2.0') return bad('"jsonrpc" must be "2.0"');
  if (typeof v.method !== 'string') return bad('"method" must be a string');
  if (v.id !== undefined && v.id !== null && typeof v.id !== 'string' && intValue(v.id) === undefined) return bad('"id" must be a string, an integer or null');
  const params = v.params === undefined ? {} : v.params;
  if (!isPlainObject(params)) return { ok: false, response: rpcError(INVALID_PARAMS, 'Params must be an object', id) };
  return { ok: true, method: v.method, params, id: typeof v.id === 'bigint' ? Number(v.id) : id };
}

/**
 * One JSON-RPC request of OpenEnv's dialect. `wsSession` is the WebSocket's own session (`{"type":"mcp"}` messages),
 * which `tools/call` uses when the request names none.
 */
export async function handleRpc(core: EnvCore, request: unknown, wsSession?: EnvSession): Promise<RpcResponse> {
  const p = parseRpc(request);
  if (!p.ok) return p.response;
  const { method, params, id } = p;
  if (method === 'openenv/session/create') {
    if (wsSession) return rpcResult({ session_id: wsSession.id }, id);
    let s: EnvSession;
    let ref: TaskRef;
    try {
      ref = resetRef(core, params);
      core.checkRef(ref);
      s = core.open(core.mintId(), 'mcp');
    } catch (e) {
      if (e instanceof CapacityError) return rpcError(SERVER_ERROR, e.message, id, { active_sessions: e.active, max_sessions: e.max });
      if (e instanceof TaskRefError) return rpcError(INVALID_PARAMS, e.message, id);
      throw e;
    }
    const ep = await core.reset(s, ref);
    return rpcResult({ session_id: s.id, task_id: ep.taskId, prompt: ep.prompt }, id);
  }
  if (method === 'openenv/session/close') {
    const target = params.session_id;
    if (typeof target !== 'string' || target === '') return rpcError(INVALID_PARAMS, "Invalid params - 'session_id' is required", id);
    if (wsSession && target === wsSession.id) return rpcError(INVALID_REQUEST, 'Cannot close active WebSocket-managed session via MCP method', id);
    const s = core.get(target, 'mcp');
    if (!s) return rpcError(INVALID_PARAMS, `Unknown session_id: ${target}`, id);
    await core.close(s);
    return rpcResult({ session_id: target, closed: true }, id);
  }
  let session = wsSession;
  if (typeof params.session_id === 'string' && params.session_id !== '' && !(wsSession && params.session_id === wsSession.id)) {
    session = core.get(params.session_id, 'mcp');
    if (!session) return rpcError(INVALID_PARAMS, `Unknown session_id: ${params.session_id}`, id);
  }
  if (session) core.touch(session);
  if (method === 'tools/list') return rpcResult({ tools: toolList(core, 'inputSchema', session?.episode) }, id);
  if (method === 'tools/call') {
    const name = params.name;
    if (typeof name !== 'string' || name === '') return rpcError(INVALID_PARAMS, "Missing 'name' in params", id);
    if (!session) return rpcError(INVALID_PARAMS, "Invalid params - 'session_id' is required: tools/call acts on an episode (openenv/session/create)", id);
    if (!core.tools(session.episode).some((t) => t.name === name)) return rpcError(INVALID_PARAMS, `Tool not found: ${name}`, id);
    const args = params.arguments === undefined || params.arguments === null ? {} : params.arguments;
    if (!isPlainObject(args)) return rpcError(INVALID_PARAMS, "Invalid params - 'arguments' must be an object", id);
    if (!session.episode) return rpcError(INVALID_REQUEST, 'No episode in this session: reset it first', id);
    const r = await core.call(session, name, pyJsonDumps(args));
    const ep = session.episode;
    const extra = {
      reward: r.ok ? r.reward : (ep?.reward ?? null),
      done: ep?.finished ?? false,
      reward_components: r.ok ? r.components : (ep?.components ?? null),
      explanation: r.ok ? r.explanation : (ep?.explanation ?? null),
    };
    return rpcResult(r.ok ? callResult(r.text, false, extra) : callResult(r.error, true, extra), id);
  }
  return rpcError(METHOD_NOT_FOUND, `Method not found: ${method}`, id);
}

// ------------------------------------------------------------------------------------------------ routes

export function registerOpenEnv(app: Hono, core: EnvCore): void {
  app.get('/health', (c) => c.json({ status: 'healthy' }));
  app.get('/metadata', (c) =>
    c.json({
      name: ENV_NAME,
      description:
        'MedAgentBench v2 on an in-memory FHIR R4 sandbox: each episode is one clinical task on a fresh copy-on-write session; the nine FHIR tools of funcs_v1.json and finish; reward 1/0 from the official grader, its named checks as reward components.',
      readme_content: null,
      version: VERSION,
      author: null,
      documentation_url: null,
    }),
  );
  app.get('/schema', (c) => c.json({ action: ACTION_SCHEMA, observation: OBSERVATION_SCHEMA, state: STATE_SCHEMA }));
  app.post('/mcp', async (c) => {
    const b = await readJsonBody(c);
    if (!b.ok && b.status === 413) return c.json(b.body as object, 413);
    if (!b.ok) return c.json(rpcError(PARSE_ERROR, undefined, null));
    const v = b.value;
    return c.json(await handleRpc(core, v));
  });
}

// ------------------------------------------------------------------------------------------------ WebSocket

function wsError(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: 'error', data: { message, code, ...extra } });
}

function validation(errors: Array<{ type: string; loc: string[]; msg: string }>): string {
  return wsError('VALIDATION_ERROR', 'Invalid message', { errors });
}

const MESSAGE_KEYS: Record<string, readonly string[]> = {
  reset: ['type', 'data'],
  step: ['type', 'data'],
  state: ['type'],
  close: ['type'],
  mcp: ['type', 'data'],
};

/** Serve one `/ws` connection: its own environment session for its lifetime. */
export function serveWebSocket(core: EnvCore, ws: WebSocket): void {
  let s: EnvSession;
  try {
    s = core.open(core.mintId(), 'ws');
  } catch (e) {
    if (e instanceof CapacityError) {
      ws.send(wsError('CAPACITY_REACHED', e.message, { active_sessions: e.active, max_sessions: e.max }));
    } else {
      ws.send(wsError('SESSION_ERROR', (e as Error).message));
    }
    ws.close();
    return;
  }
  s.onClose = () => ws.close();
  let chain: Promise<void> = Promise.resolve();
  ws.on('message', (raw: RawData) => {
    chain = chain.then(() => onMessage(raw)).catch((e: unknown) => ws.send(wsError('EXECUTION_ERROR', e instanceof Error ? e.message : String(e))));
  });
  ws.on('close', () => void core.close(s));
  ws.on('error', () => void core.close(s));

  const onMessage = async (raw: RawData): Promise<void> => {
    if (s.closed) return;
    core.touch(s);
    let msg: unknown;
    try {
      msg = parseJsonText(raw.toString());
    } catch (e) {
      ws.send(wsError('INVALID_JSON', `Invalid JSON: ${(e as Error).message}`));
      return;
    }
    const type = isPlainObject(msg) && typeof msg.type === 'string' ? msg.type : '';
    const keys = MESSAGE_KEYS[type];
    if (!keys || !isPlainObject(msg)) {
      ws.send(wsError('UNKNOWN_TYPE', `Unknown message type: ${type}`));
      return;
    }
    const extra = Object.keys(msg).filter((k) => !keys.includes(k));
    if (extra.length > 0) {
      ws.send(validation(extra.map((k) => ({ type: 'extra_forbidden', loc: [k], msg: 'Extra inputs are not permitted' }))));
      return;
    }
    const data = msg.data === undefined && type === 'reset' ? {} : msg.data;
    if ((type === 'reset' || type === 'step' || type === 'mcp') && !isPlainObject(data)) {
      ws.send(
        validation([
          {
            type: data === undefined ? 'missing' : 'dict_type',
            loc: ['data'],
            msg: data === undefined ? 'Field required' : 'Input should be a valid dictionary',
          },
        ]),
      );
      return;
    }
    switch (type) {
      case 'reset': {
        try {
          await core.reset(s, resetRef(core, data as Record<string, unknown>));
        } catch (e) {
          if (e instanceof TaskRefError) {
            ws.send(wsError('EXECUTION_ERROR', e.message));
            return;
          }
          throw e;
        }
        ws.send(JSON.stringify({ type: 'observation', data: resetObservation(core, s) }));
        return;
      }
      case 'step': {
        const a = data as Record<string, unknown>;
        const actionType = a.type === undefined ? 'call_tool' : a.type;
        if (actionType === 'list_tools') {
          const bad = Object.keys(a).filter((k) => k !== 'type' && k !== 'metadata');
          if (bad.length > 0) {
            ws.send(validation(bad.map((k) => ({ type: 'extra_forbidden', loc: [k], msg: 'Extra inputs are not permitted' }))));
            return;
          }
          const ep = s.episode;
          const obs = {
            tool_name: null,
            result: null,
            error: null,
            tools: toolList(core, 'input_schema', ep),
            task_id: ep?.taskId ?? null,
            split: ep?.split ?? null,
            index: ep?.index ?? null,
            prompt: null,
            reward_components: null,
            explanation: null,
          };
          ws.send(JSON.stringify({ type: 'observation', data: { observation: obs, reward: null, done: ep?.finished ?? false } }));
          return;
        }
        const errors: Array<{ type: string; loc: string[]; msg: string }> = [];
        if (actionType !== 'call_tool') errors.push({ type: 'literal_error', loc: ['type'], msg: "Input should be 'call_tool' or 'list_tools'" });
        if (typeof a.tool_name !== 'string')
          errors.push({
            type: a.tool_name === undefined ? 'missing' : 'string_type',
            loc: ['tool_name'],
            msg: a.tool_name === undefined ? 'Field required' : 'Input should be a valid string',
          });
        if (a.arguments !== undefined && !isPlainObject(a.arguments))
          errors.push({ type: 'dict_type', loc: ['arguments'], msg: 'Input should be a valid dictionary' });
        for (const k of Object.keys(a))
          if (!['type', 'tool_name', 'arguments', 'metadata'].includes(k))
            errors.push({ type: 'extra_forbidden', loc: [k], msg: 'Extra inputs are not permitted' });
        if (errors.length > 0) {
          ws.send(validation(errors));
          return;
        }
        if (!s.episode) {
          ws.send(wsError('EXECUTION_ERROR', 'No episode: send a reset message first'));
          return;
        }
        const name = a.tool_name as string;
        const r = await core.call(s, name, pyJsonDumps(a.arguments ?? {}));
        ws.send(stepMessage(s, name, r));
        return;
      }
      case 'state':
        ws.send(JSON.stringify({ type: 'state', data: stateOf(s) }));
        return;
      case 'close':
        await core.close(s);
        ws.close();
        return;
      case 'mcp': {
        const response = await handleRpc(core, data, s);
        ws.send(JSON.stringify({ type: 'mcp', data: plain(response) }));
        return;
      }
    }
  };
}
