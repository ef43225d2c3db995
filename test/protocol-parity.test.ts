/**
 * Whatever the protocol, the MedAgentBench graders give the same verdict for the same actions: every built-in scripted
 * agent (the expert, the degenerate baselines and the agents that make classic mistakes) runs all 300 tasks through
 * text and tools, and through MCP (the oracle all 300, the others every 4th task); the oracle scores 300/300 in each, every agent's per-task verdicts are identical across protocols,
 * and so are the actions it took (the agent turns of the text history).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEval, type EvalOptions } from '../src/eval/run.js';
import { openBackend, officialGrader, openTaskSet } from '../src/eval/setup.js';
import type { EpisodeSession, FhirBackend } from '../src/eval/backend.js';
import { type McpToolHost, startMcpToolHost } from '../src/agent/mcp-env.js';
import { createAgent } from '../src/agent/create.js';
import type { Protocol } from '../src/protocol/action.js';
import type { HistoryItem } from '../src/tasks/types.js';

const API = 'http://localhost:8080/fhir/';
const AGENTS = ['oracle', 'finish-empty', 'give-up', 'no-post', 'string-answer', 'bad-post-json'];
const PROTOCOLS: Protocol[] = ['text', 'tools', 'mcp'];

let backend: FhirBackend;
let tmp: string;
let mcpLive: McpToolHost;
let mcpOfficial: McpToolHost;
before(async () => {
  backend = await openBackend({ apiBase: API, world: 'medagentbench', live: true });
  tmp = mkdtempSync(join(tmpdir(), 'ehrgym-parity-'));
  mcpLive = await startMcpToolHost({ apiBase: API, postMode: 'live' });
  mcpOfficial = await startMcpToolHost({ apiBase: API, postMode: 'official' });
});
after(async () => {
  await mcpLive.close();
  await mcpOfficial.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function run(agent: string, protocol: Protocol, extra: Partial<EvalOptions> = {}) {
  const out = extra.out ?? join(tmp, `${agent}-${protocol}`);
  const res = await runEval({
    out,
    taskSet: openTaskSet('medagentbench-v2'),
    agent: createAgent(agent),
    backend,
    grade: officialGrader,
    apiBase: API,
    protocol,
    postMode: protocol === 'text' ? 'official' : 'live',
    ...(protocol === 'mcp'
      ? {
          toolEnvironment: (e: { sessionId: string; session: EpisodeSession }) =>
            (extra.postMode === 'official' ? mcpOfficial : mcpLive).environment({ sessionId: e.sessionId, fhir: e.session.transport }),
        }
      : {}),
    concurrency: 8,
    progress: false,
    emptyReplyStreak: 0,
    ...extra,
  });
  const verdicts = new Map<number, boolean>();
  for (const line of readFileSync(join(out, 'grades.jsonl'), 'utf8').trim().split('\n')) {
    const g = JSON.parse(line);
    verdicts.set(g.index, g.correct);
  }
  const actions = new Map<number, string[]>();
  for (const line of readFileSync(join(out, 'runs.jsonl'), 'utf8').trim().split('\n')) {
    const r = JSON.parse(line);
    actions.set(
      r.index,
      (r.output.history as HistoryItem[]).filter((h) => h.role === 'agent').map((h) => h.content),
    );
  }
  return { res, verdicts, actions, manifest: JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) };
}

/**
 * MCP episodes cost the most (a loopback HTTP round trip per call): the oracle runs all 300 tasks over MCP, the other
 * agents every 4th task (75, all ten families), compared with the same tasks in text and tools.
 */
const MCP_SUBSET = { index: 0, count: 4 };

test('every scripted agent: identical per-task verdicts and actions across protocols; the oracle 300/300 in each', async () => {
  for (const agent of AGENTS) {
    const runs = [];
    for (const protocol of PROTOCOLS) {
      const subset = protocol === 'mcp' && agent !== 'oracle';
      runs.push({ protocol, ...(await run(agent, protocol, subset ? { shard: MCP_SUBSET } : {})) });
    }
    const mcpTasks = agent === 'oracle' ? 300 : 300 / MCP_SUBSET.count;
    const [first, ...rest] = runs;
    assert.equal(first.manifest.protocol, 'text');
    // tools and mcp: the same transcripts (history and native messages), byte for byte
    const outputs = (p: Protocol) =>
      new Map(
        readFileSync(join(tmp, `${agent}-${p}`, 'runs.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .map((r) => [r.index, JSON.stringify(r.output)]),
      );
    const viaTools = outputs('tools');
    const viaMcp = outputs('mcp');
    assert.equal(viaMcp.size, mcpTasks);
    for (const [index, o] of viaMcp) assert.equal(viaTools.get(index), o, `${agent}: task index ${index}, tools and mcp transcripts differ`);
    for (const r of rest) {
      assert.equal(r.manifest.protocol, r.protocol);
      assert.equal(r.verdicts.size, r.protocol === 'mcp' ? mcpTasks : 300, `${agent} ${r.protocol}`);
      for (const [index, ok] of r.verdicts) assert.equal(first.verdicts.get(index), ok, `${agent}: task index ${index} ${r.protocol} ${ok}, text ${!ok}`);
      for (const [index, acts] of r.actions) assert.deepEqual(first.actions.get(index), acts, `${agent}: task index ${index}`);
    }
    const correct = [...first.verdicts.values()].filter(Boolean).length;
    if (agent === 'oracle') assert.equal(correct, 300);
    if (agent === 'finish-empty') assert.equal(correct, 70);
    // each mistake costs something and not everything
    if (['no-post', 'string-answer', 'bad-post-json'].includes(agent)) assert.ok(correct > 0 && correct < 300, `${agent}: ${correct}`);
  }
});

test('--resume refuses a protocol change; an old text run folder (no protocol in its manifest) resumes as text', async () => {
  const out = join(tmp, 'resume');
  const base = {
    taskSet: openTaskSet('medagentbench-v2'),
    agent: createAgent('finish-empty'),
    backend,
    grade: officialGrader,
    apiBase: API,
    limit: 3,
    progress: false,
  };
  await runEval({ ...base, out, protocol: 'text' });
  await assert.rejects(runEval({ ...base, out, protocol: 'tools', postMode: 'official', resume: true }), /--resume refused: .*protocol/);
  // a manifest written before protocols were a choice
  const path = join(out, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  delete m.protocol;
  (await import('node:fs')).writeFileSync(path, JSON.stringify(m, null, 2) + '\n');
  const again = await runEval({ ...base, out, resume: true });
  assert.equal(again.ran, 0);
});

test('replay across protocols: a tools run replays in text, a text run in tools, with the same verdicts', async () => {
  const tools = await run('string-answer', 'tools', { limit: 40, out: join(tmp, 'rec-a') });
  const text = await run('no-post', 'text', { limit: 40, out: join(tmp, 'rec-b') });
  const t2 = await run(`replay:${join(tmp, 'rec-a', 'runs.jsonl')}`, 'text', { limit: 40, out: join(tmp, 'replay-a') });
  const t3 = await run(`replay:${join(tmp, 'rec-b', 'runs.jsonl')}`, 'tools', { limit: 40, out: join(tmp, 'replay-b') });
  assert.deepEqual([...t2.verdicts], [...tools.verdicts]);
  assert.deepEqual([...t3.verdicts], [...text.verdicts]);
  assert.deepEqual([...t3.actions], [...text.actions]);
});

test('an episode whose tools cannot be opened is an agent failure (error.jsonl), not the end of the run; --resume reruns it', async () => {
  const out = join(tmp, 'tools-unavailable');
  const base = {
    out,
    taskSet: openTaskSet('medagentbench-v2'),
    agent: createAgent('oracle'),
    backend,
    grade: officialGrader,
    apiBase: API,
    protocol: 'mcp' as const,
    postMode: 'live' as const,
    limit: 3,
    progress: false,
  };
  const first = await runEval({
    ...base,
    toolEnvironment: async (e) => {
      if (e.index === 1) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
      return mcpLive.environment({ sessionId: e.sessionId, fhir: e.session.transport });
    },
  });
  assert.deepEqual(first.failed, [1]);
  assert.match(readFileSync(join(out, 'error.jsonl'), 'utf8'), /the episode's tools could not be opened: connect ECONNREFUSED/);
  const again = await runEval({ ...base, resume: true, toolEnvironment: (e) => mcpLive.environment({ sessionId: e.sessionId, fhir: e.session.transport }) });
  assert.equal(again.ran, 1);
  assert.equal(again.summary!.correct, 3);
});
