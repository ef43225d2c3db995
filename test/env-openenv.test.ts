/**
 * The OpenEnv surface over the wire: /health, /schema, /metadata; WS /ws episodes (reset / step / state / close / mcp
 * messages) with a `ws` client speaking OpenEnv's message protocol — the oracle (reward 1, every component true), a
 * wrong dose (reward 0, exactly the dose component false); every error code; the shared cap; POST /mcp JSON-RPC in
 * OpenEnv's dialect; idle reaping closing a socket.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildEnv, startEnvServer, type StartedEnvServer } from '../src/env/server.js';
import { EnvCore } from '../src/env/core.js';
import { stepMessage, stepMessageSlow } from '../src/env/openenv.js';
import { bpCall, playOracle, wrongDose } from './helpers/env-oracle.js';

let core: EnvCore;
let server: StartedEnvServer;

before(async () => {
  core = (await buildEnv({ trainSize: 50 })).core;
  server = await startEnvServer(core, { port: 0 });
});
after(async () => {
  await server.close();
});

interface Msg {
  type: string;
  data: Record<string, unknown>;
}

/** An OpenEnv WebSocket client: `send` returns the next message; `closed` resolves when the server closes. */
async function connect(
  base = server.url,
): Promise<{ send(m: unknown): Promise<Msg>; next(): Promise<Msg>; raw(text: string): Promise<Msg>; closed: Promise<number>; ws: WebSocket }> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
  const queue: Msg[] = [];
  const waiting: Array<(m: Msg) => void> = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Msg;
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = () => new Promise<Msg>((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push(resolve)));
  return {
    ws,
    closed,
    next,
    raw: (text) => {
      ws.send(text);
      return next();
    },
    send: (m) => {
      ws.send(JSON.stringify(m));
      return next();
    },
  };
}

const rpc = async (body: unknown, base = server.url) => {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { jsonrpc: string; id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data: unknown } };
};

type Obs = { observation: Record<string, unknown>; reward: number | null; done: boolean };

const taskIndex = (id: string) => core.split('test').tasks.findIndex((t) => t.id === id);

test('http: /health, /metadata and /schema as OpenEnv serves them; simulation-mode /reset and /step are not served', async () => {
  assert.deepEqual(await (await fetch(`${server.url}/health`)).json(), { status: 'healthy' });
  const meta = (await (await fetch(`${server.url}/metadata`)).json()) as Record<string, unknown>;
  assert.equal(meta.name, 'medagentbench');
  assert.equal(typeof meta.description, 'string');
  assert.ok('version' in meta && 'readme_content' in meta && 'author' in meta && 'documentation_url' in meta);
  const schema = (await (await fetch(`${server.url}/schema`)).json()) as Record<string, { title: string }>;
  assert.deepEqual(Object.keys(schema), ['action', 'observation', 'state']);
  assert.equal(schema.observation!.title, 'MedAgentBenchObservation');
  assert.equal((await fetch(`${server.url}/reset`, { method: 'POST' })).status, 404);
  assert.equal((await fetch(`${server.url}/step`, { method: 'POST' })).status, 404);
});

test('ws: the oracle episode → reward 1, done, every component true; a wrong dose → reward 0 with exactly doseQuantity false', async () => {
  const c = await connect();
  const reset = await c.send({ type: 'reset', data: { split: 'test', index: taskIndex('task5_21') } });
  assert.equal(reset.type, 'observation');
  const r0 = reset.data as unknown as Obs;
  assert.equal(r0.done, false);
  assert.equal(r0.reward, null);
  assert.equal(r0.observation.task_id, 'task5_21');
  assert.match(r0.observation.prompt as string, /magnesium/);
  assert.equal((r0.observation.tools as unknown[]).length, 10);
  assert.ok(!('metadata' in r0.observation), 'metadata is dropped from the wire');
  const play = (mutate?: typeof wrongDose) =>
    playOracle(
      core.task('test', taskIndex('task5_21')),
      async (call) => {
        const m = await c.send({ type: 'step', data: { type: 'call_tool', tool_name: call.name, arguments: JSON.parse(call.arguments) } });
        assert.equal(m.type, 'observation', JSON.stringify(m));
        const d = m.data as unknown as Obs;
        const result = d.observation.result as { content: Array<{ text: string }>; data: string } | null;
        return { text: result ? result.data : '', done: d.done, d };
      },
      mutate,
    );
  const ok = (await play()).last.d;
  assert.equal(ok.reward, 1);
  assert.equal(ok.done, true);
  const comps = ok.observation.reward_components as Record<string, boolean>;
  assert.ok(Object.keys(comps).length >= 10 && Object.values(comps).every((v) => v), JSON.stringify(comps));
  assert.match(ok.observation.explanation as string, /^correct/);
  const state = await c.send({ type: 'state' });
  assert.equal(state.type, 'state');
  assert.equal(state.data.task_id, 'task5_21');
  assert.equal(state.data.done, true);
  assert.equal(state.data.reward, 1);
  assert.ok((state.data.step_count as number) >= 3);

  await c.send({ type: 'reset', data: { task_id: 'task5_21' } });
  const bad = (await play(wrongDose)).last.d;
  assert.equal(bad.reward, 0);
  assert.equal(bad.done, true);
  assert.deepEqual(
    Object.entries(bad.observation.reward_components as Record<string, boolean>).filter(([, v]) => !v),
    [['doseQuantity', false]],
  );
  const before = core.activeSessions;
  c.ws.send(JSON.stringify({ type: 'close' }));
  await c.closed;
  for (let i = 0; i < 50 && core.activeSessions !== before - 1; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(core.activeSessions, before - 1);
});

test('ws: the step message built with the text escaped once is byte-identical to JSON.stringify of the observation', async () => {
  const s = core.open('bytes', 'ws');
  await core.reset(s, { split: 'test', index: taskIndex('task5_21') });
  const outcomes = [
    await core.call(s, 'observation_search_labs', JSON.stringify({ patient: 'S3084624', code: 'MG' })),
    await core.call(s, 'patient_search', JSON.stringify({ family: 'O"Brien\\ \u2028 ☃' })),
    await core.call(s, 'nope', '{}'),
    await core.call(s, 'finish', JSON.stringify({ answer: [1.5] })),
  ];
  for (const r of outcomes) assert.equal(stepMessage(s, 'tool', r), stepMessageSlow(s, 'tool', r));
  assert.ok(outcomes[3]!.ok && outcomes[3]!.finished);
  await core.close(s);
});

test('ws: reset without a task takes the next train task in order; list_tools; mcp messages on the socket session', async () => {
  const c = await connect();
  const a = (await c.send({ type: 'reset', data: {} })).data as unknown as Obs;
  const b = (await c.send({ type: 'reset' })).data as unknown as Obs;
  const train = core.split('train').tasks;
  const ia = train.findIndex((t) => t.id === a.observation.task_id);
  assert.ok(ia >= 0);
  assert.equal(b.observation.task_id, train[(ia + 1) % train.length]!.id);
  assert.equal(b.observation.split, 'train');
  const lt = (await c.send({ type: 'step', data: { type: 'list_tools' } })).data as unknown as Obs;
  assert.equal((lt.observation.tools as unknown[]).length, 10);
  const m = await c.send({
    type: 'mcp',
    data: { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'patient_search', arguments: { family: 'Nobody-Such' } } },
  });
  assert.equal(m.type, 'mcp');
  assert.equal(m.data.id, 7);
  assert.match((m.data.result as { data: string }).data as string, /^Here is the response from the GET request/);
  const st = await c.send({ type: 'state' });
  assert.equal(st.data.step_count, 1);
  c.ws.close();
  await c.closed;
});

test('ws: every error code — INVALID_JSON, UNKNOWN_TYPE, VALIDATION_ERROR, EXECUTION_ERROR; tool errors in the observation', async () => {
  const c = await connect();
  const inv = await c.raw('{"type": ');
  assert.deepEqual([inv.type, inv.data.code], ['error', 'INVALID_JSON']);
  assert.equal((await c.send({ type: 'dance' })).data.code, 'UNKNOWN_TYPE');
  assert.equal((await c.send({ type: 'step', data: { type: 'call_tool', arguments: {} } })).data.code, 'VALIDATION_ERROR');
  assert.equal((await c.send({ type: 'state', extra: 1 })).data.code, 'VALIDATION_ERROR');
  assert.equal((await c.send({ type: 'step', data: { type: 'call_tool', tool_name: 'finish', arguments: { answer: [] } } })).data.code, 'EXECUTION_ERROR');
  const badSplit = await c.send({ type: 'reset', data: { split: 'nope', index: 0 } });
  assert.deepEqual([badSplit.data.code, badSplit.data.message], ['EXECUTION_ERROR', 'Invalid split']);
  await c.send({ type: 'reset', data: { split: 'test', index: 0 } });
  const unknown = (await c.send({ type: 'step', data: { type: 'call_tool', tool_name: 'rm_rf', arguments: {} } })).data as unknown as Obs;
  assert.equal((unknown.observation.error as { error_type: string }).error_type, 'tool_not_found');
  assert.equal(unknown.done, false);
  const badArgs = (await c.send({ type: 'step', data: { type: 'call_tool', tool_name: 'finish', arguments: {} } })).data as unknown as Obs;
  assert.equal((badArgs.observation.error as { error_type: string }).error_type, 'invalid_args');
  c.ws.close();
  await c.closed;
});

test('capacity: one cap for both surfaces — CAPACITY_REACHED with counts then the socket closes; JSON-RPC -32000; ORS 503', async () => {
  const small = new EnvCore({ splits: core.splitList(), worlds: core.worldList(), apiBase: core.apiBase, maxSessions: 2 });
  const srv = await startEnvServer(small, { port: 0 });
  try {
    const a = await connect(srv.url);
    const created = await rpc({ jsonrpc: '2.0', id: 1, method: 'openenv/session/create', params: { split: 'test', index: 0 } }, srv.url);
    assert.equal(typeof created.result!.session_id, 'string');
    const b = await connect(srv.url);
    const m = await b.next();
    assert.deepEqual(m, {
      type: 'error',
      data: {
        message: 'Server at capacity: 2/2 sessions active. Cannot accept new connections.',
        code: 'CAPACITY_REACHED',
        active_sessions: 2,
        max_sessions: 2,
      },
    });
    await b.closed;
    const full = await rpc({ jsonrpc: '2.0', id: 2, method: 'openenv/session/create' }, srv.url);
    assert.deepEqual(full.error, {
      code: -32000,
      message: 'Server at capacity: 2/2 sessions active. Cannot accept new connections.',
      data: { active_sessions: 2, max_sessions: 2 },
    });
    const ors = await fetch(`${srv.url}/create`, {
      method: 'POST',
      headers: { 'x-session-id': 'z', 'content-type': 'application/json' },
      body: JSON.stringify({ split: 'test', index: 0 }),
    });
    assert.equal(ors.status, 503);
    a.ws.close();
    await a.closed;
  } finally {
    await srv.close();
  }
});

test('mcp: JSON-RPC in OpenEnv dialect — tools/list, session create/close, tools/call with session_id to a graded finish; error codes', async () => {
  const list = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const tools = list.result!.tools as Array<{ name: string; inputSchema: unknown }>;
  assert.equal(tools.length, 10);
  assert.ok(tools.every((t) => typeof t.inputSchema === 'object'));
  const created = await rpc({ jsonrpc: '2.0', id: 'c', method: 'openenv/session/create', params: { task_id: 'task5_21' } });
  assert.equal(created.id, 'c');
  const sid = created.result!.session_id as string;
  assert.equal(created.result!.task_id, 'task5_21');
  const { last } = await playOracle(core.task('test', taskIndex('task5_21')), async (call) => {
    const r = await rpc({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: call.name, arguments: JSON.parse(call.arguments), session_id: sid } });
    const res = r.result as {
      data: string;
      is_error: boolean;
      structured_content: { done: boolean; reward: number | null; reward_components: Record<string, boolean> | null };
    };
    assert.equal(res.is_error, false);
    return { text: res.data, done: res.structured_content.done, res };
  });
  assert.equal(last.res.structured_content.reward, 1);
  assert.ok(Object.values(last.res.structured_content.reward_components!).every((v) => v));
  assert.deepEqual((await rpc({ jsonrpc: '2.0', id: 4, method: 'openenv/session/close', params: { session_id: sid } })).result, {
    session_id: sid,
    closed: true,
  });

  assert.deepEqual(await rpc('{"jsonrpc": "2.0", '), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error', data: null } });
  assert.equal((await rpc({ jsonrpc: '1.0', id: 1, method: 'tools/list' })).error!.code, -32600);
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list', extra: true })).error!.code, -32600);
  const nf = await rpc({ jsonrpc: '2.0', id: 1, method: 'resources/list' });
  assert.deepEqual(nf.error, { code: -32601, message: 'Method not found: resources/list', data: null });
  assert.deepEqual((await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'finish', arguments: { answer: [] }, session_id: sid } })).error, {
    code: -32602,
    message: `Unknown session_id: ${sid}`,
    data: null,
  });
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'openenv/session/close', params: {} })).error!.code, -32602);
  const s2 = (await rpc({ jsonrpc: '2.0', id: 1, method: 'openenv/session/create' })).result!.session_id as string;
  assert.deepEqual(
    (await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'nope', session_id: s2 } })).error!.message,
    'Tool not found: nope',
  );
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { arguments: {}, session_id: s2 } })).error!.code, -32602);
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'finish', arguments: { answer: [] } } })).error!.code, -32602);
  const badArgs = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'finish', arguments: {}, session_id: s2 } });
  assert.equal((badArgs.result as { is_error: boolean }).is_error, true);
  assert.equal((await rpc({ jsonrpc: '2.0', id: 1, method: 'openenv/session/create', params: { split: 'test', index: 999 } })).error!.code, -32602);
  await rpc({ jsonrpc: '2.0', id: 1, method: 'openenv/session/close', params: { session_id: s2 } });
  const big = await fetch(`${server.url}/mcp`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 1) });
  assert.equal(big.status, 413);
});

test('isolation over the wire: 1,000 concurrent WebSocket episodes that write see only their own writes', async () => {
  const clients = await Promise.all(Array.from({ length: 1000 }, () => connect()));
  await Promise.all(clients.map((c, i) => c.send({ type: 'reset', data: { split: 'test', index: i % 300 } })));
  const writes = await Promise.all(
    clients.map((c, i) => {
      const call = bpCall('S6534835', `wire-leak-${i}-end`);
      return c.send({ type: 'step', data: { type: 'call_tool', tool_name: call.name, arguments: JSON.parse(call.arguments) } });
    }),
  );
  const text = (m: Msg) => ((m.data as unknown as Obs).observation.result as { data: string }).data;
  const id = /Observation\/(\d+)\//.exec(text(writes[0]!))![1]!;
  const reads = await Promise.all(
    clients.map((c) => c.send({ type: 'step', data: { type: 'call_tool', tool_name: 'observation_search_vitals', arguments: { _id: id } } })),
  );
  reads.forEach((m, i) => assert.deepEqual(text(m).match(/wire-leak-\d+-end/g), [`wire-leak-${i}-end`], `episode ${i}`));
  await Promise.all(
    clients.map((c) => {
      c.ws.close();
      return c.closed;
    }),
  );
});

test('reaping: a WebSocket idle past the timeout is closed and its session dropped', async () => {
  const small = new EnvCore({ splits: core.splitList(), worlds: core.worldList(), apiBase: core.apiBase, idleTimeoutMs: 200 });
  const srv = await startEnvServer(small, { port: 0 });
  try {
    const c = await connect(srv.url);
    await c.send({ type: 'reset', data: { split: 'test', index: 0 } });
    assert.equal(small.activeSessions, 1);
    await c.closed;
    assert.equal(small.activeSessions, 0);
  } finally {
    await srv.close();
  }
});
