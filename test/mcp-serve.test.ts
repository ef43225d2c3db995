/**
 * MCP at `ehrgym serve`'s `/mcp`: the official SDK client over loopback HTTP against the spawned CLI (the replica,
 * `--max-sessions 2`): handshake, tools, GET/POST/finish texts, session isolation, DELETE, the session cap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type ServedCli, spawnServe } from './helpers/serve.js';
import { bp } from './fhir-fixtures.js';
import { callToAction, functionTools, toolErrorText, toolSpecs, TOOL_ERROR_PREFIX } from '../src/protocol/tools.js';
import { executeAction } from '../src/agent/loop.js';
import { toFunctionTools } from '../src/agent/mcp-env.js';
import { httpTransport } from '../src/fhir/client.js';
import { defaultJsonLoads } from '../src/agent/loop.js';

let served: ServedCli;
let info: { url: string; mcp: string };

before(async () => {
  served = await spawnServe(['--port', '0', '--max-sessions', '2', '--json'], (stdout) => stdout.includes('\n'), 120_000);
  info = JSON.parse(served.stdout.split('\n')[0]!) as { url: string; mcp: string };
});

after(async () => {
  const { code } = await served.stop('SIGTERM');
  assert.equal(code, 0);
});

interface Connected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** End the session (HTTP DELETE) and close the client. */
  end(): Promise<void>;
}

async function connect(): Promise<Connected> {
  const transport = new StreamableHTTPClientTransport(new URL(info.mcp));
  const client = new Client({ name: 'ehrgym-test', version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    transport,
    end: async () => {
      await transport.terminateSession();
      await client.close();
    },
  };
}

function text(res: Awaited<ReturnType<Client['callTool']>>): string {
  const content = res.content as Array<{ type: string; text: string }>;
  assert.equal(content.length, 1);
  assert.equal(content[0]!.type, 'text');
  return content[0]!.text;
}

/** What the text protocol answers to `action` in the FHIR session `session` of the served world. */
function direct(session: string, action: Parameters<typeof executeAction>[0]): Promise<string> {
  return executeAction(action, { fhir: httpTransport({ session }), postMode: 'live', jsonLoads: defaultJsonLoads });
}

test('serve --json gives the MCP URL next to the FHIR base; the server answers as ehrgym with the tools capability', async () => {
  assert.equal(info.mcp, info.url.replace(/\/fhir\/$/, '/mcp'));
  assert.match(info.mcp, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  const c = await connect();
  try {
    assert.match(c.transport.sessionId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(c.client.getServerVersion()?.name, 'ehrgym');
    assert.deepEqual(c.client.getServerCapabilities()?.tools, {});
  } finally {
    await c.end();
  }
});

test('tools/list is the tools protocol: same names, descriptions, JSON Schemas, byte for byte as OpenAI tools', async () => {
  const c = await connect();
  try {
    const { tools, nextCursor } = await c.client.listTools();
    assert.equal(nextCursor, undefined);
    assert.deepEqual(
      tools.map((t) => t.name),
      toolSpecs().map((s) => s.name),
    );
    assert.equal(JSON.stringify(toFunctionTools(tools)), JSON.stringify(functionTools()));
  } finally {
    await c.end();
  }
});

test('a search call answers exactly the text protocol GET text of the same URL in the same session', async () => {
  const c = await connect();
  try {
    const sid = c.transport.sessionId!;
    const calls: Array<[string, Record<string, unknown>]> = [
      ['patient_search', { identifier: 'S6534835' }],
      ['observation_search_labs', { patient: 'S0636132', code: 'MG', _sort: '-date', _count: 1 }],
      ['condition_search', { patient: 'S6534835', category: 'problem-list-item' }],
      ['patient_search', { family: 'No Such Name & Co' }],
    ];
    for (const [name, args] of calls) {
      const res = await c.client.callTool({ name, arguments: args });
      assert.notEqual(res.isError, true);
      const outcome = callToAction(name, JSON.stringify(args), info.url);
      assert.ok(outcome.ok && outcome.action.kind === 'get');
      const expected = await direct(sid, outcome.action);
      assert.match(expected, /^Here is the response from the GET request:\n\{/);
      assert.equal(text(res), expected, name);
    }
  } finally {
    await c.end();
  }
});

test('a create call is executed in its MCP session: a later search there sees it, another MCP session does not; DELETE drops it', async () => {
  const a = await connect();
  const b = await connect();
  let ended = false;
  try {
    const search = { patient: 'S6534835', category: 'vital-signs', date: 'ge2023-11-13T10:00:00+00:00' };
    const before = text(await b.client.callTool({ name: 'observation_search_vitals', arguments: search }));
    const posted = text(await a.client.callTool({ name: 'observation_create', arguments: bp('S6534835', '118/77 mmHg') }));
    const m =
      /^POST request accepted and executed successfully\. Location: (http:\/\/127\.0\.0\.1:\d+\/fhir\/Observation\/(\d+))\/_history\/1\. Please call FINISH/.exec(
        posted,
      );
    assert.ok(m, posted);
    const seenA = text(await a.client.callTool({ name: 'observation_search_vitals', arguments: search }));
    assert.ok(seenA.includes(`"fullUrl": "${m[1]}"`), 'the writing session sees its write');
    assert.ok(seenA.includes('118/77 mmHg'));
    const seenB = text(await b.client.callTool({ name: 'observation_search_vitals', arguments: search }));
    assert.equal(seenB, before, 'another session sees nothing of it');
    assert.ok(!seenB.includes('118/77 mmHg'));
    // the FHIR session of an MCP session is named by its id: the write is there until the MCP session ends
    const sid = a.transport.sessionId!;
    const read = await fetch(`${info.url}Observation/${m[2]}`, { headers: { 'X-Ehrgym-Session': sid } });
    assert.equal(read.status, 200);
    ended = true;
    await b.end();
    await a.end();
    const gone = await fetch(`${info.url}Observation/${m[2]}`, { headers: { 'X-Ehrgym-Session': sid } });
    assert.equal(gone.status, 404, 'DELETE dropped the sandbox');
    const stale = await fetch(info.mcp, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(stale.status, 404);
    assert.equal(((await stale.json()) as { error: { code: number } }).error.code, -32001);
  } finally {
    if (!ended) await Promise.all([a.end(), b.end()]).catch(() => undefined);
  }
});

test('finish answers its answer list as JSON; unknown tools and bad arguments are isError with the tools protocol text', async () => {
  const c = await connect();
  try {
    const fin = await c.client.callTool({ name: 'finish', arguments: { answer: ['S6534835', 2.5, 1, null] } });
    assert.notEqual(fin.isError, true);
    assert.equal(text(fin), '["S6534835", 2.5, 1, null]');
    const cases: Array<[string, Record<string, unknown>]> = [
      ['no_such_tool', {}],
      ['patient_search', { identifier: { nested: true } }],
      ['finish', {}],
    ];
    for (const [name, args] of cases) {
      const res = await c.client.callTool({ name, arguments: args });
      assert.equal(res.isError, true, name);
      const outcome = callToAction(name, JSON.stringify(args), info.url);
      assert.ok(!outcome.ok);
      assert.equal(text(res), toolErrorText(outcome.error));
      assert.ok(text(res).startsWith(TOOL_ERROR_PREFIX));
    }
  } finally {
    await c.end();
  }
});

test('--max-sessions caps MCP sessions: one more initialize is HTTP 503 with a JSON-RPC error, a freed slot is reusable', async () => {
  const a = await connect();
  const b = await connect();
  try {
    await assert.rejects(connect(), (e: unknown) => {
      assert.ok(e instanceof StreamableHTTPError);
      assert.equal(e.code, 503);
      assert.match(e.message, /"code":-32000,"message":"Too many MCP sessions \(limit 2\)/);
      return true;
    });
    await b.end();
    const c = await connect();
    assert.equal((await c.client.listTools()).tools.length, toolSpecs().length);
    await c.end();
    // the FHIR API is untouched by the refusal
    assert.equal((await fetch(`${info.url}metadata`)).status, 200);
  } finally {
    await Promise.all([a.end(), b.end()]).catch(() => undefined);
  }
});

test('HTTP outside the protocol: GET is 405, a request without session that is not initialize is 400, a foreign Origin is 403', async () => {
  const get = await fetch(info.mcp, { headers: { accept: 'text/event-stream' } });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST, DELETE');
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const noSession = await fetch(info.mcp, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
  assert.equal(noSession.status, 400);
  assert.equal(((await noSession.json()) as { jsonrpc: string }).jsonrpc, '2.0');
  const notJson = await fetch(info.mcp, { method: 'POST', headers, body: '{' });
  assert.equal(notJson.status, 400);
  assert.equal(((await notJson.json()) as { error: { code: number } }).error.code, -32700);
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
  };
  const foreign = await fetch(info.mcp, { method: 'POST', headers: { ...headers, origin: 'http://evil.example' }, body: JSON.stringify(init) });
  assert.equal(foreign.status, 403);
});

test('serve prints the MCP URL under the FHIR base; bad MCP flags exit 2 naming the flag', async () => {
  const s = await spawnServe(['--world', 'synthetic', '--patients', '5', '--port', '0'], (stdout) => /^press Ctrl\+C/m.test(stdout), 120_000);
  try {
    const fhir = /at (http:\/\/127\.0\.0\.1:(\d+)\/fhir\/)\n/.exec(s.stdout)!;
    assert.match(s.stdout, new RegExp(`^MCP \\(Streamable HTTP\\) at http://127\\.0\\.0\\.1:${fhir[2]}/mcp$`, 'm'));
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${fhir[2]}/mcp`));
    const client = new Client({ name: 'ehrgym-test', version: '1.0.0' });
    await client.connect(transport);
    assert.equal((await client.listTools()).tools.length, toolSpecs().length);
    await transport.terminateSession();
    await client.close();
  } finally {
    assert.equal((await s.stop('SIGTERM')).code, 0);
  }
  for (const [flag, value, message] of [
    ['--mcp-idle-timeout', '0', /^ehrgym: --mcp-idle-timeout/],
    ['--mcp-post-mode', 'sometimes', /--mcp-post-mode/],
  ] as const) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'serve', '--port', '0', flag, value], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
