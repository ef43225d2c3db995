/**
 * The MCP endpoint (src/protocol/mcp.ts) mounted next to `/fhir` on a fixture world, with the official SDK client over
 * loopback HTTP: idle timeout, body limit, POST mode official, the exact arguments text, refusals of `openSession`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { buildFixture, bp } from './fhir-fixtures.js';
import { startFhirServer } from '../src/fhir/server.js';
import { ARGUMENTS_TEXT_META, argumentsText, createMcpEndpoint, MCP_PATH, type McpEndpoint, type McpEndpointOptions, McpRefusal } from '../src/protocol/mcp.js';
import { fhirSessionOpener } from '../src/agent/mcp-env.js';
import type { PostMode } from '../src/agent/loop.js';
import { POST_ACCEPTED } from '../src/protocol/text.js';

async function served(opts: Partial<McpEndpointOptions> & { postMode?: PostMode } = {}) {
  const { store } = buildFixture();
  let mcp: McpEndpoint | undefined;
  const server = await startFhirServer(store, { mounts: { [MCP_PATH]: (req) => mcp!.fetch(req) } });
  mcp = createMcpEndpoint({ openSession: fhirSessionOpener(server.handle, { postMode: opts.postMode }), ...opts });
  const url = new URL(MCP_PATH, server.url);
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(url);
    const client = new Client({ name: 'ehrgym-test', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  };
  return {
    store,
    server,
    mcp,
    connect,
    close: async () => {
      await mcp!.close();
      await server.close();
    },
  };
}

const text = (res: Awaited<ReturnType<Client['callTool']>>) => (res.content as Array<{ text: string }>)[0]!.text;

test('an idle session is closed with its sandbox; later requests on it are 404 (session not found)', async () => {
  const idleMs = 1000;
  const s = await served({ idleMs });
  try {
    const { client, transport } = await s.connect();
    const posted = text(await client.callTool({ name: 'observation_create', arguments: bp('S1', '120/80 mmHg') }));
    const t0 = performance.now();
    assert.match(posted, /^POST request accepted and executed successfully\. Location: /);
    const sid = transport.sessionId!;
    assert.ok(s.store.hasSession(sid), 'the write opened the FHIR session named by the MCP session');
    assert.equal(s.mcp.sessionCount, 1);
    while (s.mcp.sessionCount > 0 && performance.now() - t0 < 10_000) await sleep(50);
    assert.equal(s.mcp.sessionCount, 0);
    assert.ok(performance.now() - t0 >= idleMs - 50, 'not before the idle time');
    assert.equal(s.store.hasSession(sid), false, 'its writes are dropped');
    await assert.rejects(client.listTools(), (e: unknown) => e instanceof StreamableHTTPError && e.code === 404);
    await client.close();
  } finally {
    await s.close();
  }
});

test('a request body beyond the limit is 413, before and after initialize; the session stays usable', async () => {
  const s = await served({ maxBodyBytes: 4096 });
  try {
    const { client, transport } = await s.connect();
    const big = { ...bp('S1', 'x'.repeat(5000)) };
    await assert.rejects(client.callTool({ name: 'observation_create', arguments: big }), (e: unknown) => e instanceof StreamableHTTPError && e.code === 413);
    assert.match(text(await client.callTool({ name: 'observation_create', arguments: bp('S1', '1/1 mmHg') })), /^POST request accepted/);
    const init = await fetch(new URL(MCP_PATH, s.server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(5000) } }),
    });
    assert.equal(init.status, 413);
    assert.equal(s.mcp.sessionCount, 1);
    await transport.terminateSession();
    await client.close();
    assert.equal(s.mcp.sessionCount, 0);
  } finally {
    await s.close();
  }
});

test('POST mode official: a create call is accepted and nothing is written', async () => {
  const s = await served({ postMode: 'official' });
  try {
    const { client, transport } = await s.connect();
    assert.equal(text(await client.callTool({ name: 'observation_create', arguments: bp('S1', '1/1 mmHg') })), POST_ACCEPTED);
    assert.equal(s.store.hasSession(transport.sessionId!), false);
    await transport.terminateSession();
    await client.close();
  } finally {
    await s.close();
  }
});

test('the exact arguments text in _meta is used when it says the same as the arguments object, ignored otherwise', async () => {
  assert.equal(argumentsText({ _count: 1 }, { [ARGUMENTS_TEXT_META]: '{"_count": 1.0}' }), '{"_count": 1.0}');
  assert.equal(argumentsText({ _count: 1 }, { [ARGUMENTS_TEXT_META]: '{"_count": 2}' }), '{"_count":1}');
  assert.equal(argumentsText({ a: 1 }, { [ARGUMENTS_TEXT_META]: 'not json' }), '{"a":1}');
  assert.equal(argumentsText(undefined, undefined), '{}');
  const s = await served();
  try {
    const { client, transport } = await s.connect();
    const withText = await client.callTool({
      name: 'patient_search',
      arguments: { identifier: 'S1', _count: 1 },
      _meta: { [ARGUMENTS_TEXT_META]: '{"identifier": "S1", "_count": 1.0}' },
    });
    assert.match(text(withText), /400 Client Error: Bad Request for url: http:\/\/127\.0\.0\.1:\d+\/fhir\/Patient\?identifier=S1&_count=1\.0&_format=json$/);
    const lying = await client.callTool({ name: 'patient_search', arguments: { identifier: 'S1' }, _meta: { [ARGUMENTS_TEXT_META]: '{"identifier": "S2"}' } });
    assert.match(text(lying), /^Here is the response from the GET request:\n/);
    assert.ok(text(lying).includes('/Patient/S1"'));
    assert.ok(!text(lying).includes('/Patient/S2"'));
    await transport.terminateSession();
    await client.close();
  } finally {
    await s.close();
  }
});

test('openSession refusals are answered with their status and a JSON-RPC error; no session is left behind', async () => {
  const { store } = buildFixture();
  const mcp = createMcpEndpoint({
    openSession: async () => {
      throw new McpRefusal(403, 'not today');
    },
  });
  const server = await startFhirServer(store, { mounts: { [MCP_PATH]: (req) => mcp.fetch(req) } });
  try {
    const client = new Client({ name: 'ehrgym-test', version: '1.0.0' });
    await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(MCP_PATH, server.url))), (e: unknown) => {
      assert.ok(e instanceof StreamableHTTPError);
      assert.equal(e.code, 403);
      assert.match(e.message, /Cannot open a session: not today/);
      return true;
    });
    assert.equal(mcp.sessionCount, 0);
    // the FHIR routes are unchanged by the mount
    assert.equal((await fetch(`${server.url}Patient/S1`)).status, 200);
    assert.equal((await fetch(new URL('/mcp/x', server.url))).status, 404);
  } finally {
    await mcp.close();
    await server.close();
  }
});
