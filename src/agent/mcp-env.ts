/**
 * The `mcp` protocol's sandboxes and client (docs/eval.md, "MCP"):
 *
 * - `fhirSessionOpener`: what `ehrgym serve` binds each MCP session to: a sandbox FHIR session of the served world
 *   named by the MCP session id, executed in-process, dropped with the MCP session.
 * - `startMcpToolHost`: what `ehrgym eval --protocol mcp` runs: the MCP endpoint on 127.0.0.1 (a free port) over real
 *   HTTP, bound to the run's FHIR backend and POST mode, and per episode an MCP client (`Client` +
 *   `StreamableHTTPClientTransport` of the official SDK) as the episode's `ToolEnvironment`. The episode's MCP session
 *   runs in the eval's own episode session (named by the `X-Ehrgym-Session` header of its `initialize`), so grading
 *   and transcripts are those of the `tools` protocol.
 *
 * A call whose arguments are not a JSON object in JSON's own grammar (text that is not JSON, a list, Python's `NaN`)
 * cannot travel over MCP, whose arguments are an object: it is executed on the episode's session directly, exactly as
 * the `tools` protocol does (a create call's invalid body is `Invalid POST request`, without I/O). Every other call
 * goes over MCP with its exact text in `_meta["ehrgym/argumentsText"]`.
 */
import { closeServer } from '../fhir/node-http.js';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { FhirTransport } from '../fhir/types.js';
import { type FhirHandler, SESSION_HEADER } from '../fhir/server.js';
import { handlerTransport } from '../fhir/client.js';
import { ARGUMENTS_TEXT_META, createMcpEndpoint, MAX_IDLE_MS, MCP_PATH, type McpEndpoint, McpRefusal, type McpSessionBinding } from '../protocol/mcp.js';
import { type FunctionTool, functionTools } from '../protocol/tools.js';
import { MEDAGENTBENCH_DIALECT, type Dialect } from '../protocol/dialect.js';
import { VERSION } from '../version.js';
import { type JsonLoads, type PostMode, defaultJsonLoads, executeAction } from './loop.js';
import type { ToolEnvironment } from './tools-loop.js';

/**
 * How long a call may take (the SDK's default is 60 s): a large search over an external server may take longer, and
 * the tools protocol would wait for it.
 */
const CALL_TIMEOUT_MS = 10 * 60_000;

/**
 * `ehrgym serve`: each MCP session runs in the FHIR session named by its MCP session id on `handle` (the served
 * world), its calls mapped onto the base the client addressed (`http://HOST:PORT/fhir/`); dropped with the MCP session.
 */
export function fhirSessionOpener(
  handle: FhirHandler,
  opts: { postMode?: PostMode; jsonLoads?: JsonLoads; dialect?: Dialect } = {},
): (info: { mcpSessionId: string; request: Request }) => Promise<McpSessionBinding> {
  const postMode = opts.postMode ?? 'live';
  const jsonLoads = opts.jsonLoads ?? defaultJsonLoads;
  return async ({ mcpSessionId, request }) => {
    const apiBase = new URL('/fhir/', request.url).href;
    const fhir = handlerTransport(handle, { session: mcpSessionId });
    return {
      apiBase,
      // the served world's dialect (`ehrgym serve --suite`: the suite's tools, PUT updates included)
      ...(opts.dialect ? { dialect: opts.dialect } : {}),
      execute: (action) => executeAction(action, { fhir, postMode, jsonLoads }),
      close: async () => {
        await fhir({ method: 'DELETE', url: `${apiBase}_session/${mcpSessionId}` });
      },
    };
  };
}

/** A call's arguments as the object MCP carries, or undefined when they are not a JSON object. */
export function objectArguments(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** MCP tools (`tools/list`) as OpenAI function tools. */
export function toFunctionTools(tools: Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }>): FunctionTool[] {
  return tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description ?? '', parameters: t.inputSchema } }));
}

/** The text of a tool result (its text items, joined by newlines). */
function resultText(res: Record<string, unknown>): string {
  const content = Array.isArray(res.content) ? (res.content as Array<{ type?: string; text?: unknown }>) : [];
  return content
    .filter((c) => c.type === 'text' && typeof c.text === 'string')
    .map((c) => c.text as string)
    .join('\n');
}

export interface McpToolHost {
  /** The endpoint's URL, e.g. `http://127.0.0.1:41234/mcp`. */
  url: string;
  /** Connect an MCP client whose session runs in the episode's session `sessionId` (transport `fhir`). */
  /** `dialect`: the episode's (its tool list; default MedAgentBench's). */
  environment(episode: { sessionId: string; fhir: FhirTransport; dialect?: Dialect }): Promise<ToolEnvironment>;
  /** Live MCP sessions on the endpoint. */
  readonly sessionCount: number;
  close(): Promise<void>;
}

export interface McpToolHostOptions {
  /** The run's api_base (what calls are mapped onto, as in the `tools` protocol). */
  apiBase: string;
  postMode: PostMode;
  jsonLoads?: JsonLoads;
}

/** Listen with `fetch` on 127.0.0.1 (a free port); the endpoint answers at `MCP_PATH`. */
async function listen(endpoint: McpEndpoint): Promise<{ url: string; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: (req: Request) => (new URL(req.url).pathname === MCP_PATH ? endpoint.fetch(req) : new Response('Not found\n', { status: 404 })),
        hostname: '127.0.0.1',
        port: 0,
      },
      (info: AddressInfo) => {
        resolve({
          url: `http://127.0.0.1:${info.port}${MCP_PATH}`,
          close: () => closeServer(server),
        });
      },
    );
    server.on('error', reject);
  });
}

/** Start the eval's MCP endpoint (loopback HTTP) and hand out one connected client per episode. */
export async function startMcpToolHost(opts: McpToolHostOptions): Promise<McpToolHost> {
  const jsonLoads = opts.jsonLoads ?? defaultJsonLoads;
  const episodes = new Map<string, { fhir: FhirTransport; dialect: Dialect }>();
  const endpoint = createMcpEndpoint({
    // the eval ends its sessions itself; a model may think for long between calls
    idleMs: MAX_IDLE_MS,
    maxSessions: Number.MAX_SAFE_INTEGER,
    openSession: async ({ request }) => {
      const id = request.headers.get(SESSION_HEADER);
      const ep = id === null ? undefined : episodes.get(id);
      if (!ep) throw new McpRefusal(400, `no episode session ${JSON.stringify(id)} (send ${SESSION_HEADER} with initialize)`);
      const { fhir, dialect } = ep;
      return {
        apiBase: opts.apiBase,
        dialect,
        execute: (action) => executeAction(action, { fhir, postMode: opts.postMode, jsonLoads }),
        close: async () => {},
      };
    },
  });
  const http = await listen(endpoint);
  const validator = new AjvJsonSchemaValidator();
  const expected = new Map<string, string>();
  const expectedTools = (d: Dialect) => {
    let t = expected.get(d.name);
    if (t === undefined) expected.set(d.name, (t = JSON.stringify(functionTools(d))));
    return t;
  };

  return {
    url: http.url,
    get sessionCount() {
      return endpoint.sessionCount;
    },
    environment: async ({ sessionId, fhir, dialect = MEDAGENTBENCH_DIALECT }) => {
      episodes.set(sessionId, { fhir, dialect });
      const transport = new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { [SESSION_HEADER]: sessionId } } });
      const client = new Client({ name: 'ehrgym-eval', version: VERSION }, { jsonSchemaValidator: validator });
      const release = async () => {
        try {
          if (transport.sessionId !== undefined) await transport.terminateSession();
        } finally {
          await client.close();
          episodes.delete(sessionId);
        }
      };
      let tools: FunctionTool[];
      try {
        await client.connect(transport);
        const listed: Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }> = [];
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor === undefined ? undefined : { cursor });
          listed.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        tools = toFunctionTools(listed);
        if (JSON.stringify(tools) !== expectedTools(dialect)) throw new Error(`the MCP server at ${http.url} lists other tools than the tools protocol`);
      } catch (e) {
        await release().catch(() => undefined);
        throw e;
      }
      const direct = { fhir, postMode: opts.postMode, jsonLoads };
      return {
        tools,
        execute: async (action, call) => {
          const args = objectArguments(call.arguments);
          if (!args) return executeAction(action, direct);
          const res = await client.callTool({ name: call.name, arguments: args, _meta: { [ARGUMENTS_TEXT_META]: call.arguments } }, undefined, {
            timeout: CALL_TIMEOUT_MS,
          });
          return resultText(res);
        },
        close: release,
      };
    },
    close: async () => {
      await endpoint.close();
      await http.close();
    },
  };
}
