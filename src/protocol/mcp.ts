/**
 * The `mcp` protocol's server: MedAgentBench's tools (exactly `toolSpecs()` of src/protocol/tools.ts: same names,
 * descriptions, and the JSON Schema parameters as `inputSchema`) served over MCP Streamable HTTP as a Web-standard
 * `fetch(Request) → Response` handler (docs/eval.md, "MCP").
 *
 * - Stateful: `initialize` opens an MCP session (`Mcp-Session-Id`, a random UUID; `<replicaId>.<UUID>` with a replica
 *   id, src/fhir/replica.ts) and, through `openSession`, the
 *   sandbox FHIR session its calls run in; `DELETE`, the idle timeout or `close()` drop both.
 * - A call is mapped with `callToAction` exactly as a tools-protocol call and answered with what `execute` says (the
 *   text protocol's answer to that GET/POST): `{content: [{type: 'text', text}]}`. `finish` answers its answer list as
 *   JSON text. A call that maps to no action (unknown tool, bad arguments) answers `isError: true` with the tools
 *   protocol's `Error in the tool call: …` text.
 * - The arguments travel as a JSON object; a client may add their exact text as `_meta["ehrgym/argumentsText"]`, used
 *   when it parses to the same object (so `1.0` stays `1.0` in a query, as in the tools protocol).
 * - Limits: at most `maxSessions` live sessions (an `initialize` beyond is answered HTTP 503 with a JSON-RPC error),
 *   `idleMs` without a request closes a session, request bodies beyond `maxBodyBytes` are answered 413. Responses are
 *   JSON (no SSE); `GET` (a server-to-client stream) is answered 405, as the spec allows: the server sends no
 *   notifications. A request whose `Origin` names another host than its `Host` is answered 403 (DNS rebinding).
 *
 * Execution is injected (`openSession`), so this module depends on nothing above the protocol layer.
 */
import { canonicalJson } from '../fhir/json.js';
import { readBodyLimited } from '../fhir/node-http.js';
import { checkReplicaId, mintSessionId } from '../fhir/replica.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, type CallToolResult, isInitializeRequest, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { Action } from './action.js';
import { callToAction, toolErrorText, toolSpecs } from './tools.js';
import { MEDAGENTBENCH_DIALECT, type Dialect } from './dialect.js';
import { VERSION } from '../version.js';

/** Where the MCP endpoint is served, next to `/fhir/`. */
export const MCP_PATH = '/mcp';
/** The `_meta` key under which a client may send a call's arguments as the exact JSON text the model wrote. */
export const ARGUMENTS_TEXT_META = 'ehrgym/argumentsText';
/** Default idle time (ms) after which a session without requests is closed: 15 minutes. */
export const DEFAULT_MCP_IDLE_MS = 15 * 60_000;
/** Longest idle timeout (ms): the longest Node timer. */
export const MAX_IDLE_MS = 2 ** 31 - 1;
/** Default cap on live MCP sessions. */
export const DEFAULT_MCP_MAX_SESSIONS = 10_000;
/** Default largest request body (bytes): 4 MiB (a create call carries its resource twice: object and text). */
export const DEFAULT_MCP_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** JSON-RPC error codes used in HTTP-level refusals (the SDK's own: -32000 server error, -32001 session not found). */
const SERVER_ERROR = -32000;
const SESSION_NOT_FOUND = -32001;
const PARSE_ERROR = -32700;
const INTERNAL_ERROR = -32603;

/** The sandbox an MCP session's calls run in. */
export interface McpSessionBinding {
  /** The api_base tool calls are mapped onto (`{api_base}Observation?…`). */
  apiBase: string;
  /** The protocol dialect of the session's episode (its tool list and call mapping); default MedAgentBench's. */
  dialect?: Dialect;
  /** The text answer to a GET or POST (never throws for FHIR-level failures: they are answer texts). */
  execute(action: Extract<Action, { kind: 'get' | 'post' | 'put' }>): Promise<string>;
  /** Drop the sandbox (called once, when the MCP session ends). */
  close(): Promise<void>;
}

/** Thrown by `openSession` to refuse an `initialize` with an HTTP status and a message. */
export class McpRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'McpRefusal';
  }
}

export interface McpEndpointOptions {
  /** Open the sandbox of a new MCP session (`request` is its `initialize` request). */
  openSession(info: { mcpSessionId: string; request: Request }): Promise<McpSessionBinding>;
  maxSessions?: number;
  idleMs?: number;
  maxBodyBytes?: number;
  /** Prefix of minted session ids, for a load balancer in front of several replicas (src/fhir/replica.ts). */
  replicaId?: string;
}

export interface McpEndpoint {
  /** Answer one HTTP request addressed to the endpoint. Never rejects. */
  fetch(request: Request): Promise<Response>;
  /** Live sessions. */
  readonly sessionCount: number;
  /** Close every session. */
  close(): Promise<void>;
}

/** The tools of a dialect as MCP `tools/list` announces them (default MedAgentBench's). */
export function mcpTools(dialect: Dialect = MEDAGENTBENCH_DIALECT): Tool[] {
  return toolSpecs(dialect).map((s) => ({ name: s.name, description: s.description, inputSchema: s.parameters as Tool['inputSchema'] }));
}

/** The arguments text a call is mapped from: the client's exact text when it says the same as the object, else the object's JSON. */
export function argumentsText(args: Record<string, unknown> | undefined, meta: Record<string, unknown> | undefined): string {
  const obj = args ?? {};
  const raw = meta?.[ARGUMENTS_TEXT_META];
  if (typeof raw === 'string') {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && canonicalJson(parsed) === canonicalJson(obj)) return raw;
    } catch {
      // not JSON: the object is what was sent
    }
  }
  return JSON.stringify(obj);
}

function textResult(text: string, isError = false): CallToolResult {
  return isError ? { content: [{ type: 'text', text }], isError: true } : { content: [{ type: 'text', text }] };
}

function jsonRpcError(status: number, code: number, message: string, id: unknown = null, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

interface LiveSession {
  id: string;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  binding: McpSessionBinding;
  timer: NodeJS.Timeout;
  inflight: number;
  closed: boolean;
}

/** Whether an `Origin` header names the host the request was sent to (or is absent). */
function originAllowed(req: Request): boolean {
  const origin = req.headers.get('origin');
  if (origin === null) return true;
  try {
    return new URL(origin).host === new URL(req.url).host;
  } catch {
    return false;
  }
}

/** The MCP endpoint: one SDK `Server` and Streamable HTTP transport per session. */
export function createMcpEndpoint(opts: McpEndpointOptions): McpEndpoint {
  const maxSessions = opts.maxSessions ?? DEFAULT_MCP_MAX_SESSIONS;
  const idleMs = opts.idleMs ?? DEFAULT_MCP_IDLE_MS;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MCP_MAX_BODY_BYTES;
  if (!(maxSessions >= 1)) throw new RangeError(`maxSessions must be at least 1, got ${maxSessions}`);
  if (!(idleMs >= 1 && idleMs <= MAX_IDLE_MS)) throw new RangeError(`idleMs must be within 1..${MAX_IDLE_MS} (a Node timer), got ${idleMs}`);
  if (!(maxBodyBytes >= 1)) throw new RangeError(`maxBodyBytes must be at least 1, got ${maxBodyBytes}`);
  const replicaId = opts.replicaId === undefined ? undefined : checkReplicaId(opts.replicaId);
  const sessions = new Map<string, LiveSession>();
  /** Initializations admitted but not yet registered (they count against the cap). */
  let opening = 0;
  const validator = new AjvJsonSchemaValidator();

  const drop = async (s: LiveSession): Promise<void> => {
    if (s.closed) return;
    s.closed = true;
    clearTimeout(s.timer);
    try {
      await s.transport.close().catch(() => undefined);
      await s.binding.close().catch(() => undefined);
    } finally {
      // counted until its sandbox is gone
      sessions.delete(s.id);
    }
  };

  const arm = (s: LiveSession): NodeJS.Timeout => {
    const t = setTimeout(() => {
      if (s.inflight > 0) s.timer.refresh();
      else void drop(s);
    }, idleMs);
    t.unref();
    return t;
  };

  const newServer = (binding: McpSessionBinding): Server => {
    const server = new Server({ name: 'ehrgym', version: VERSION }, { capabilities: { tools: {} }, jsonSchemaValidator: validator });
    const dialect = binding.dialect ?? MEDAGENTBENCH_DIALECT;
    const tools = mcpTools(dialect);
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      const { name, arguments: args, _meta } = request.params;
      const outcome = callToAction(name, argumentsText(args, _meta as Record<string, unknown> | undefined), binding.apiBase, dialect);
      if (!outcome.ok) return textResult(toolErrorText(outcome.error), true);
      if (outcome.action.kind === 'finish') return textResult(outcome.action.answer);
      return textResult(await binding.execute(outcome.action));
    });
    return server;
  };

  const initialize = async (req: Request): Promise<Response> => {
    const declared = Number(req.headers.get('content-length'));
    if (declared > maxBodyBytes) return jsonRpcError(413, SERVER_ERROR, `Payload Too Large: Request body must not exceed ${maxBodyBytes} bytes`);
    const bytes = await readBodyLimited(req, maxBodyBytes);
    if (bytes === undefined) return jsonRpcError(413, SERVER_ERROR, `Payload Too Large: Request body must not exceed ${maxBodyBytes} bytes`);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return jsonRpcError(400, PARSE_ERROR, 'Parse error: Invalid JSON');
    }
    const messages = Array.isArray(body) ? body : [body];
    const init = messages.find((m) => isInitializeRequest(m)) as { id?: unknown } | undefined;
    if (!init) return jsonRpcError(400, SERVER_ERROR, 'Bad Request: no Mcp-Session-Id header; a session starts with an initialize request');
    if (sessions.size + opening >= maxSessions) {
      return jsonRpcError(
        503,
        SERVER_ERROR,
        `Too many MCP sessions (limit ${maxSessions}): end finished sessions (HTTP DELETE with their Mcp-Session-Id) and retry`,
        init.id ?? null,
        { 'retry-after': '1' },
      );
    }
    opening++;
    const id = mintSessionId(replicaId);
    let binding: McpSessionBinding;
    try {
      binding = await opts.openSession({ mcpSessionId: id, request: req });
    } catch (e) {
      const status = e instanceof McpRefusal ? e.status : 500;
      return jsonRpcError(status, SERVER_ERROR, `Cannot open a session: ${e instanceof Error ? e.message : String(e)}`, init.id ?? null);
    } finally {
      opening--;
    }
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      enableJsonResponse: true,
      maxRequestBodySize: maxBodyBytes,
      // DELETE: answered once the sandbox is dropped
      onsessionclosed: () => {
        const s = sessions.get(id);
        return s ? drop(s) : undefined;
      },
    });
    const server = newServer(binding);
    const s: LiveSession = { id, transport, server, binding, timer: undefined as unknown as NodeJS.Timeout, inflight: 1, closed: false };
    s.timer = arm(s);
    transport.onclose = () => void drop(s);
    sessions.set(id, s);
    try {
      await server.connect(transport);
      const res = await transport.handleRequest(req, { parsedBody: body });
      // refused by the transport (e.g. a missing Accept type): no session was made
      if (!res.ok) await drop(s);
      return res;
    } catch (e) {
      await drop(s);
      throw e;
    } finally {
      s.inflight--;
    }
  };

  const handle = async (req: Request): Promise<Response> => {
    if (!originAllowed(req)) return jsonRpcError(403, SERVER_ERROR, 'Forbidden: the Origin header does not name this server');
    const method = req.method;
    if (method === 'GET' || (method !== 'POST' && method !== 'DELETE')) {
      return jsonRpcError(405, SERVER_ERROR, `Method Not Allowed: ${method} (this endpoint answers POST and DELETE)`, null, { allow: 'POST, DELETE' });
    }
    const sid = req.headers.get('mcp-session-id');
    if (sid === null) {
      if (method === 'DELETE') return jsonRpcError(400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
      return initialize(req);
    }
    const s = sessions.get(sid);
    if (!s || s.closed) return jsonRpcError(404, SESSION_NOT_FOUND, 'Session not found');
    s.inflight++;
    s.timer.refresh();
    try {
      return await s.transport.handleRequest(req);
    } finally {
      s.inflight--;
      if (!s.closed) s.timer.refresh();
    }
  };

  return {
    fetch: async (req) => {
      try {
        return await handle(req);
      } catch (e) {
        return jsonRpcError(500, INTERNAL_ERROR, `Internal error: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    get sessionCount() {
      return sessions.size;
    },
    close: async () => {
      await Promise.all([...sessions.values()].map(drop));
    },
  };
}
