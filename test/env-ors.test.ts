/**
 * The ORS surface over the wire, with a client that speaks the protocol as the reference client does (SSE parsed line
 * by line, `data:` values left-stripped, the `chunk`s and `end` concatenated): discovery, a full oracle episode
 * (reward 1, every component true), a wrong dose (reward 0, exactly the dose component false), every bad input the
 * reference server answers, the cap (503), idle reaping, resumption; the CLI's flags; a Python 3 standard-library
 * client (examples/env/trl_medagentbench.py) where python3 exists.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildEnv, startEnvServer, type StartedEnvServer } from '../src/env/server.js';
import { EnvCore } from '../src/env/core.js';
import { CHUNK_SIZE } from '../src/env/ors.js';
import { playOracle, wrongDose } from './helpers/env-oracle.js';
import { cli } from './helpers/cli.js';
import { spawnServe } from './helpers/serve.js';

const EXTRA = fileURLToPath(new URL('./fixtures/env/extra-tasks.json', import.meta.url));
let core: EnvCore;
let server: StartedEnvServer;
let url: string;

before(async () => {
  core = (await buildEnv({ trainSize: 50, taskFiles: [EXTRA] })).core;
  server = await startEnvServer(core, { port: 0 });
  url = server.url;
});
after(async () => {
  await server.close();
});

interface SseEvent {
  event: string;
  data: string;
}

/** SSE events as the reference client parses them. */
function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  let event: string | null = null;
  let data: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line === '') {
      if (event) out.push({ event, data: data.join('\n') });
      event = null;
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = line.slice(0, i);
    const value = line.slice(i + 1).replace(/^\s+/, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return out;
}

const post = (path: string, body?: unknown, sid?: string, base = url) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(sid ? { 'x-session-id': sid } : {}) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

async function createSession(base = url): Promise<string> {
  const res = await post('/create_session', undefined, undefined, base);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const events = parseSse(await res.text());
  assert.deepEqual(
    events.map((e) => e.event),
    ['task_id', 'end'],
  );
  return events[0]!.data;
}

interface CallOutput {
  ok: boolean;
  error?: string;
  output?: { blocks: Array<{ type: string; text: string }>; metadata: Record<string, unknown> | null; reward: number | null; finished: boolean };
}

async function callTool(sid: string, name: string, input: unknown, base = url): Promise<{ result: CallOutput; events: SseEvent[]; raw: string }> {
  const res = await fetch(`${base}/medagentbench/call`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-session-id': sid },
    body: JSON.stringify({ name, input }),
  });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const events = parseSse(raw);
  assert.equal(events[0]!.event, 'task_id');
  assert.equal(events.at(-1)!.event, 'end');
  const pieces = events.filter((e) => e.event === 'chunk' || e.event === 'end').map((e) => e.data);
  return { result: JSON.parse(pieces.join('')) as CallOutput, events, raw };
}

test('discovery: environments, tools, splits, tasks, counts and ranges; other first segments redirect to the environment', async () => {
  assert.deepEqual(await (await fetch(`${url}/list_environments`)).json(), ['medagentbench']);
  const tools = (await (await fetch(`${url}/medagentbench/tools`)).json()) as {
    tools: Array<{ name: string; description: string; input_schema: { type: string } }>;
  };
  assert.equal(tools.tools.length, 10);
  assert.equal(tools.tools[0]!.name, 'condition_search');
  assert.equal(tools.tools.at(-1)!.name, 'finish');
  assert.equal(tools.tools[0]!.input_schema.type, 'object');
  assert.deepEqual(await (await fetch(`${url}/medagentbench/splits`)).json(), [
    { name: 'test', type: 'test' },
    { name: 'train', type: 'train' },
    { name: 'extra-tasks', type: 'validation' },
  ]);
  assert.deepEqual(await (await post('/medagentbench/num_tasks', { split: 'extra-tasks' })).json(), { num_tasks: 2 });
  assert.deepEqual(await (await post('/medagentbench/num_tasks', { split: 'test' })).json(), { num_tasks: 300 });
  const train = (await (await post('/medagentbench/num_tasks', { split: 'train' })).json()) as { num_tasks: number };
  assert.ok(train.num_tasks > 0);
  const t = (await (await post('/medagentbench/task', { split: 'test', index: 0 })).json()) as { task: { id: string } };
  assert.equal(t.task.id, 'task1_1');
  assert.deepEqual(Object.keys(t.task), ['id', 'instruction', 'context'], 'the answers stay on the server');
  const range = (await (await post('/medagentbench/task_range', { split: 'test', start: 298 })).json()) as { tasks: Array<{ id: string }> };
  assert.deepEqual(
    range.tasks.map((x) => x.id),
    ['task10_29', 'task10_30'],
  );
  const all = (await (await post('/medagentbench/tasks', { split: 'train' })).json()) as { tasks: unknown[]; env_name: string };
  assert.equal(all.tasks.length, train.num_tasks);
  assert.equal(all.env_name, 'medagentbench');
  const redirect = await fetch(`${url}/tools?x=1`, { redirect: 'manual' });
  assert.equal(redirect.status, 308);
  assert.equal(redirect.headers.get('location'), '/medagentbench/tools?x=1');
  const followed = await fetch(`${url}/splits`);
  assert.equal(followed.status, 200);
});

test('episode: the oracle over ORS → reward 1.0, finished, every reward component true in metadata', async () => {
  const index = core.split('test').tasks.findIndex((x) => x.id === 'task5_21');
  const sid = await createSession();
  assert.deepEqual(await (await post('/create', { split: 'test', index }, sid)).json(), { sid });
  const prompt = (await (await fetch(`${url}/medagentbench/prompt`, { headers: { 'x-session-id': sid } })).json()) as Array<{ type: string; text: string }>;
  assert.equal(prompt.length, 1);
  assert.equal(prompt[0]!.type, 'text');
  assert.match(prompt[0]!.text, /Context: It's 2023-11-13T10:15:00\+00:00 now\. The code for magnesium is "MG"/);
  const tt = (await (await fetch(`${url}/medagentbench/task_tools`, { headers: { 'x-session-id': sid } })).json()) as { tools: unknown[] };
  assert.equal(tt.tools.length, 10);
  const { last } = await playOracle(core.task('test', index), async (c) => {
    const { result } = await callTool(sid, c.name, JSON.parse(c.arguments));
    assert.ok(result.ok, JSON.stringify(result));
    return { text: result.output!.blocks[0]!.text, done: result.output!.finished, result };
  });
  const out = last.result.output!;
  assert.equal(out.reward, 1);
  assert.equal(out.finished, true);
  const comps = out.metadata!.reward_components as Record<string, boolean>;
  assert.ok(Object.keys(comps).length >= 10);
  assert.ok(
    Object.values(comps).every((v) => v === true),
    JSON.stringify(comps),
  );
  assert.match(out.metadata!.explanation as string, /^correct/);
  assert.deepEqual(await (await post('/ping', undefined, sid)).json(), { status: 'ok' });
  assert.deepEqual(await (await post('/delete', undefined, sid)).json(), { sid });
  assert.deepEqual(await (await post('/delete_session', undefined, sid)).json(), { sid });
  assert.equal((await post('/ping', undefined, sid)).status, 404);
});

test('episode: a wrong dose over ORS → reward 0.0 with exactly the doseQuantity component false; the wire says 0.0', async () => {
  const sid = await createSession();
  await post('/create', { task_spec: { task_id: 'task5_21' } }, sid);
  const { last } = await playOracle(
    core.task(
      'test',
      core.split('test').tasks.findIndex((x) => x.id === 'task5_21'),
    ),
    async (c) => {
      const { result, raw } = await callTool(sid, c.name, JSON.parse(c.arguments));
      return { text: result.output!.blocks[0]!.text, done: result.output!.finished, result, raw };
    },
    wrongDose,
  );
  const out = last.result.output!;
  assert.equal(out.reward, 0);
  assert.match(last.raw, /"reward":0\.0,"finished":true/);
  const comps = out.metadata!.reward_components as Record<string, boolean>;
  assert.deepEqual(
    Object.entries(comps).filter(([, v]) => !v),
    [['doseQuantity', false]],
  );
  await post('/delete', undefined, sid);
});

test('task spec: a full task record the server does not have runs on the replica and is graded by its family', async () => {
  const official = core.task('test', 0);
  const sid = await createSession();
  const spec = { id: 'task1_9001', instruction: official.instruction, context: '', sol: official.sol, eval_MRN: official.eval_MRN };
  assert.equal((await post('/create', { task_spec: spec }, sid)).status, 200);
  const { result } = await callTool(sid, 'finish', { answer: official.sol });
  assert.equal(result.output!.reward, 1);
  assert.equal(result.output!.metadata!.task_id, 'task1_9001');
  await post('/delete', undefined, sid);
});

test('task file: a --tasks file is a split of its own whose episodes are graded like any other', async () => {
  const sid = await createSession();
  assert.equal((await post('/create', { split: 'extra-tasks', index: 0 }, sid)).status, 200);
  const { result } = await callTool(sid, 'finish', { answer: ['S6534835'] });
  assert.equal(result.output!.reward, 1);
  assert.equal(result.output!.metadata!.task_id, 'task1_5001');
  await post('/delete', undefined, sid);
});

test('bad input: unknown tool and bad arguments are {ok:false} in a 200 stream; unknown session 404; bad split/index 400; 413; 422', async () => {
  const sid = await createSession();
  assert.equal((await post('/create', { split: 'test', index: 0 }, sid)).status, 200);
  const unknown = await callTool(sid, 'drop_table', {});
  assert.equal(unknown.result.ok, false);
  assert.match(unknown.result.error!, /unknown tool "drop_table"/);
  const bad = await callTool(sid, 'patient_search', { family: { nested: true } });
  assert.equal(bad.result.ok, false);
  assert.match(bad.result.error!, /must be a string, a number, a boolean or a list/);
  // the episode goes on
  const good = await callTool(sid, 'patient_search', { family: 'Nobody-Such' });
  assert.equal(good.result.ok, true);
  assert.equal(good.result.output!.finished, false);
  assert.equal(good.result.output!.reward, null);

  const nosuch = 'no-such-session';
  for (const [path, init] of [
    ['/medagentbench/prompt', { method: 'GET' }],
    ['/medagentbench/task_tools', { method: 'GET' }],
    ['/medagentbench/call', { method: 'POST', body: JSON.stringify({ name: 'finish', input: { answer: [] } }) }],
    ['/ping', { method: 'POST' }],
  ] as const) {
    const r = await fetch(`${url}${path}`, { ...init, headers: { 'x-session-id': nosuch, 'content-type': 'application/json' } });
    assert.equal(r.status, 404, path);
    assert.deepEqual(await r.json(), { detail: 'Active environment not found' });
  }
  const noHeader = await fetch(`${url}/medagentbench/prompt`);
  assert.equal(noHeader.status, 400);
  assert.deepEqual(await noHeader.json(), { detail: 'X-Session-ID header is required' });

  const s2 = await createSession();
  let r = await post('/create', { split: 'validation', index: 0 }, s2);
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { detail: 'Invalid split' });
  r = await post('/create', { split: 'test', index: 300 }, s2);
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { detail: 'Invalid index' });
  r = await post('/medagentbench/task', { split: 'test', index: -1 });
  assert.equal(r.status, 400);
  r = await post('/medagentbench/num_tasks', { split: 'nope' });
  assert.deepEqual([r.status, await r.json()], [400, { detail: 'Invalid split' }]);
  r = await post('/create', { split: 'test', index: 0, task_spec: { task_id: 'task1_1' } }, s2);
  assert.equal(r.status, 422);
  r = await post('/create', { split: 'test', index: 0, extra: 1 }, s2);
  assert.equal(r.status, 422);
  assert.equal(((await r.json()) as { detail: Array<{ type: string }> }).detail[0]!.type, 'extra_forbidden');
  r = await post('/create', '{"split": "test", ', s2);
  assert.equal(r.status, 422);
  r = await post('/create', { task_spec: { id: 'task99_1', instruction: 'x', context: '' } }, s2);
  assert.equal(r.status, 400);
  r = await post('/create', { split: 'test', index: 0 }, sid);
  assert.deepEqual([r.status, await r.json()], [400, { detail: 'Session already exists' }]);
  r = await post('/medagentbench/call', { name: 'finish', input: { answer: ['x'.repeat(1024 * 1024)] } }, sid);
  assert.equal(r.status, 413);
  r = await post('/medagentbench/call', { name: 'finish', input: [] }, sid);
  assert.equal(r.status, 422);
  const missing = await fetch(`${url}/medagentbench/nothing`);
  assert.deepEqual([missing.status, await missing.json()], [404, { detail: 'Not Found' }]);
  await post('/delete', undefined, sid);
});

test('streaming: a result longer than one piece arrives as chunks (none starting with whitespace) and end; task_id resumes it', async () => {
  const sid = await createSession();
  await post('/create', { split: 'test', index: 0 }, sid);
  const { result, events } = await callTool(sid, 'observation_search_vitals', { patient: 'S6534835', category: 'vital-signs' });
  assert.ok(result.ok);
  assert.ok(events.length > 3, `${events.length} events`);
  for (const e of events.slice(1)) {
    assert.ok(e.data.length <= CHUNK_SIZE);
    assert.ok(!/^\s/.test(e.data));
  }
  assert.deepEqual(
    events.slice(1, -1).map((e) => e.event),
    events.slice(1, -1).map(() => 'chunk'),
  );
  const resumed = await fetch(`${url}/medagentbench/call`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': sid },
    body: JSON.stringify({ name: 'observation_search_vitals', input: {}, task_id: events[0]!.data }),
  });
  const again = parseSse(await resumed.text());
  assert.deepEqual(again, events);
  const gone = await fetch(`${url}/medagentbench/call`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': sid },
    body: JSON.stringify({ name: 'finish', input: {}, task_id: 'nope' }),
  });
  assert.deepEqual(parseSse(await gone.text()), [{ event: 'error', data: 'unknown task_id' }]);
  await post('/delete', undefined, sid);
});

test('capacity and idle reaping over the wire: the next /create is 503 {detail}; an idle session is gone (404)', async () => {
  const small = new EnvCore({ splits: core.splitList(), worlds: core.worldList(), apiBase: core.apiBase, maxSessions: 2, idleTimeoutMs: 300 });
  const srv = await startEnvServer(small, { port: 0 });
  try {
    const a = await createSession(srv.url);
    const b = await createSession(srv.url);
    const c = await createSession(srv.url);
    assert.equal((await post('/create', { split: 'test', index: 0 }, a, srv.url)).status, 200);
    assert.equal((await post('/create', { split: 'test', index: 1 }, b, srv.url)).status, 200);
    const full = await post('/create', { split: 'test', index: 2 }, c, srv.url);
    assert.equal(full.status, 503);
    assert.match(((await full.json()) as { detail: string }).detail, /^Server at capacity: 2\/2 sessions active/);
    // keep b alive, let a idle out
    const until = Date.now() + 3000;
    while (Date.now() < until && small.has(a, 'ors')) {
      await post('/ping', undefined, b, srv.url);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await post('/ping', undefined, a, srv.url)).status, 404);
    assert.equal((await post('/ping', undefined, b, srv.url)).status, 200);
    assert.equal((await post('/create', { split: 'test', index: 2 }, c, srv.url)).status, 200);
  } finally {
    await srv.close();
  }
});

test('cli: env serve refuses bad flags with one line and exit 2', async () => {
  for (const [args, re] of [
    [['--port', 'x'], /--port/],
    [['--max-sessions', '0'], /--max-sessions/],
    [['--idle-timeout', '-1'], /--idle-timeout/],
    [['--train-size', '0'], /--train-size/],
    [['--max-steps', 'many'], /--max-steps/],
    [['--tasks', 'no/such/tasks.json'], /^ehrgym: --tasks: unknown task set "no\/such\/tasks.json"/],
    [['--tasks', 'data/medagentbench/test_data_v1.json'], /--tasks: task id "task1_1" is in split "test" and in split "test_data_v1"/],
  ] as const) {
    const r = await cli('env', 'serve', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').length, 1);
  }
});

test('cli: env serve --port 0 --json prints one line with its URL and splits, serves both surfaces, stops on SIGTERM', async () => {
  const served = await spawnServe(['--port', '0', '--json', '--train-size', '20'], (out) => out.includes('\n'), 120_000, ['env', 'serve']);
  const info = JSON.parse(served.stdout.trim()) as {
    url: string;
    env: string;
    splits: Array<{ name: string; type: string; tasks: number }>;
    max_sessions: number;
  };
  assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(info.env, 'medagentbench');
  assert.deepEqual(
    info.splits.map((x) => [x.name, x.type]),
    [
      ['test', 'test'],
      ['train', 'train'],
    ],
  );
  assert.equal(info.max_sessions, 10_000);
  assert.deepEqual(await (await fetch(`${info.url}/list_environments`)).json(), ['medagentbench']);
  assert.deepEqual(await (await fetch(`${info.url}/health`)).json(), { status: 'healthy' });
  const stopped = await served.stop('SIGTERM');
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('python: the standard-library TRL environment class plays an episode against the server', async (t) => {
  const which = spawnSync('python3', ['--version']);
  if (which.error || which.status !== 0) {
    t.skip('python3 not found: the Python client test is skipped');
    return;
  }
  const script = fileURLToPath(new URL('../examples/env/trl_medagentbench.py', import.meta.url));
  // asynchronously: the server answering it runs in this process
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('python3', [script, '--selftest', url], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(lines.at(-1)!), { task_id: 'task1_1', reward: 1.0, finished: true, failed_components: [] });
});
