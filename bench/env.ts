/**
 * Environment server benchmark: `ehrgym env serve`'s surfaces over a real loopback port, next to a bare `ws` server
 * and a bare `node:http` server answering the same bytes, measured in the same run (servers in a worker thread, load
 * generator on the main thread), as ratios.
 *
 *   npm run bench:env            (node --import tsx --expose-gc bench/env.ts)
 *   options: --seconds N (each throughput phase, default 3), --clients N (concurrent clients, default 16),
 *            --warmup N (seconds of WS calls, then half as many of ORS calls, before measuring; default 8: the search
 *            and repr paths reach their steady speed only after tens of thousands of calls),
 *            --resets N (latency samples, default 500), --sessions N (live sessions for the memory figure, default 10000)
 *
 * Prints: tool calls/s over WebSocket and over ORS HTTP+SSE (one small Patient search per call, a new episode every 50
 * calls, the resets counted in the time) and over WebSocket with every call answered by the same outcome without
 * searching (the surface's own cost: parsing, session, observation, framing) against the bare
 * servers' messages/requests per second; episodes/s (reset, 4 searches, finish graded) per surface; reset latency
 * p50/p99 over the wire (WS reset → prompt; ORS create_session + create + prompt); memory per live session with one
 * write each. Goals: reset p50 ≤ 1 ms over the wire; tool-call throughput ≥ 50 % of the bare server's; 10,000 live
 * sessions with one write each in ≤ 1 GB extra RSS.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import WebSocket, { WebSocketServer } from 'ws';
import { buildEnv, startEnvServer } from '../src/env/server.js';
import { resultStream, runToolOutput } from '../src/env/ors.js';
import { stepMessage } from '../src/env/openenv.js';
import { numberArg } from './args.js';

const CALL = { name: 'patient_search', input: { identifier: 'S6534835' } };
/** Calls per episode in the throughput phases (a new episode after each: MedAgentBench episodes are short). */
const EPISODE_CALLS = 50;
const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

interface Ports {
  env: number;
  echo: number;
  bare: number;
}

async function workerMain(): Promise<void> {
  const sessions = (workerData as { sessions: number }).sessions;
  // a step limit above what one client sends in a phase: every call is a real search
  const { core } = await buildEnv({ trainSize: 50, maxSessions: sessions + 1000, maxSteps: 10_000 });
  const server = await startEnvServer(core, { port: 0 });
  // the bytes the environment answers to the benchmark's call, for the bare servers
  const probe = core.open('probe', 'ws');
  await core.reset(probe, { split: 'test', index: 0 });
  const outcome = await core.call(probe, CALL.name, JSON.stringify(CALL.input));
  const wsReply = stepMessage(probe, CALL.name, outcome);
  await core.close(probe);
  const sseReply = Buffer.from(resultStream('0'.repeat(32), runToolOutput(outcome, 'task1_1')));
  const echo = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  echo.on('connection', (ws) => ws.on('message', () => ws.send(wsReply)));
  await new Promise<void>((r) => echo.once('listening', () => r()));
  const bare = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'content-length': sseReply.length });
      res.end(sseReply);
    });
  });
  bare.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  parentPort!.postMessage({
    ports: { env: server.port, echo: (echo.address() as AddressInfo).port, bare: (bare.address() as AddressInfo).port },
    wsBytes: wsReply.length,
    sseBytes: sseReply.length,
  });
  const realCall = core.call.bind(core);
  parentPort!.on('message', async (m: string) => {
    if (m === 'no-work' || m === 'work') {
      // no-work: every call answers the probe's outcome without searching (what the surface alone costs)
      core.call =
        m === 'no-work'
          ? async (s) => {
              core.touch(s);
              return outcome;
            }
          : realCall;
      parentPort!.postMessage(m);
      return;
    }
    if (m === 'memory') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const m0 = process.memoryUsage();
      const t0 = performance.now();
      const open = [];
      for (let i = 0; i < sessions; i++) {
        const s = core.open(`mem-${i}`, 'ors');
        await core.reset(s, { split: 'test', index: i % 300 });
        const r = await core.call(
          s,
          'observation_create',
          JSON.stringify({
            resourceType: 'Observation',
            category: [{ coding: [{ code: 'vital-signs' }] }],
            code: { text: 'BP' },
            effectiveDateTime: '2023-11-13T10:15:00+00:00',
            status: 'final',
            valueString: `${i}/80 mmHg`,
            subject: { reference: 'Patient/S6534835' },
          }),
        );
        if (!r.ok || !/POST request accepted/.test(r.text)) throw new Error(`write ${i} failed: ${JSON.stringify(r)}`);
        open.push(s);
      }
      const ms = performance.now() - t0;
      gc?.();
      const m1 = process.memoryUsage();
      for (const s of open) await core.close(s);
      gc?.();
      const m2 = process.memoryUsage();
      parentPort!.postMessage({
        sessions,
        ms,
        extra: m1.rss - m0.rss,
        heap: m1.heapUsed - m0.heapUsed,
        afterClose: m2.heapUsed - m0.heapUsed,
        gc: gc !== undefined,
      });
      return;
    }
    await server.close();
    echo.close();
    bare.closeAllConnections();
    bare.close();
    parentPort!.postMessage('closed');
  });
}

// ------------------------------------------------------------------------------------------------ clients

async function wsClient(url: string): Promise<{ send(m: string): Promise<string>; close(): void }> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let waiting: ((s: string) => void) | null = null;
  ws.on('message', (d) => {
    const w = waiting;
    waiting = null;
    w?.(String(d));
  });
  return {
    send: (m) =>
      new Promise<string>((resolve) => {
        waiting = resolve;
        ws.send(m);
      }),
    close: () => ws.close(),
  };
}

async function forSeconds(seconds: number, clients: number, setup: (i: number) => Promise<() => Promise<number>>): Promise<{ ops: number; perSec: number }> {
  const loops = await Promise.all(Array.from({ length: clients }, (_, i) => setup(i)));
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  const counts = await Promise.all(
    loops.map(async (once) => {
      let n = 0;
      while (performance.now() < until) n += await once();
      return n;
    }),
  );
  const ops = counts.reduce((a, b) => a + b, 0);
  return { ops, perSec: ops / ((performance.now() - t0) / 1000) };
}

const stepMsg = JSON.stringify({ type: 'step', data: { type: 'call_tool', tool_name: CALL.name, arguments: CALL.input } });
const finishMsg = JSON.stringify({ type: 'step', data: { type: 'call_tool', tool_name: 'finish', arguments: { answer: [] } } });

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One request on a kept-alive connection (node:http, Nagle off): status and body. */
function request(method: string, url: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      },
    );
    req.setNoDelay(true);
    req.on('error', reject);
    req.end(body);
  });
}

async function orsPost(base: string, path: string, body: unknown, sid?: string): Promise<string> {
  const res = await request('POST', base + path, body === undefined ? undefined : JSON.stringify(body), {
    'content-type': 'application/json',
    ...(sid ? { 'x-session-id': sid } : {}),
  });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
  return res.text;
}

async function orsOpen(base: string, index: number): Promise<string> {
  const sid = /data: (\S+)/.exec(await orsPost(base, '/create_session', undefined))![1]!;
  await orsPost(base, '/create', { split: 'test', index }, sid);
  await request('GET', `${base}/medagentbench/prompt`, undefined, { 'x-session-id': sid });
  return sid;
}

async function main(): Promise<void> {
  const seconds = numberArg('seconds', 3);
  const clients = numberArg('clients', 16, { integer: true });
  const resets = numberArg('resets', 500, { integer: true });
  const sessions = numberArg('sessions', 10_000, { integer: true });
  const warmup = numberArg('warmup', 8);
  const self = JSON.stringify(import.meta.url);
  const t0 = performance.now();
  const worker = new Worker(`import('tsx/esm/api').then((m) => m.tsImport(${self}, ${self}))`, { eval: true, workerData: { role: 'server', sessions } });
  const ready = await new Promise<{ ports: Ports; wsBytes: number; sseBytes: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const { ports } = ready;
  const env = `http://127.0.0.1:${ports.env}`;
  const wsUrl = `ws://127.0.0.1:${ports.env}/ws`;
  console.log(
    `env bench: server ready in ${fmt((performance.now() - t0) / 1000)} s; ${clients} clients, ${seconds} s per phase; reply ${ready.wsBytes} B (WS), ${ready.sseBytes} B (SSE)`,
  );

  // memory first, before any load: the process holds the world and nothing else
  worker.postMessage('memory');
  const mem = await new Promise<{ sessions: number; ms: number; extra: number; heap: number; afterClose: number; gc: boolean }>((resolve) =>
    worker.once('message', resolve),
  );

  // warm-up: the JIT needs tens of thousands of calls before the search and repr paths run at their steady speed
  const warm = async (i: number) => {
    const c = await wsClient(wsUrl);
    let k = i;
    let n = 0;
    return async () => {
      if (n++ % EPISODE_CALLS === 0) await c.send(JSON.stringify({ type: 'reset', data: { split: 'test', index: k++ % 300 } }));
      await c.send(stepMsg);
      return 1;
    };
  };
  const orsLoop = async (i: number) => {
    let k = i;
    let n = 0;
    let sid = '';
    return async () => {
      if (n++ % EPISODE_CALLS === 0) {
        if (sid) await orsPost(env, '/delete', undefined, sid);
        sid = await orsOpen(env, k++ % 300);
      }
      await orsPost(env, '/medagentbench/call', CALL, sid);
      return 1;
    };
  };
  await forSeconds(warmup, clients, warm);
  await forSeconds(warmup / 2, clients, orsLoop);

  // ---- tool calls/s: WebSocket vs bare ws (each client: episodes of EPISODE_CALLS searches; the resets count in the time)
  const wsCalls = await forSeconds(seconds, clients, warm);
  const echoRate = await forSeconds(seconds, clients, async () => {
    const c = await wsClient(`ws://127.0.0.1:${ports.echo}`);
    return async () => {
      await c.send(stepMsg);
      return 1;
    };
  });
  // ---- the same with the tool call answered without the search: the surface's own cost per call
  worker.postMessage('no-work');
  await new Promise((r) => worker.once('message', r));
  const wsNoWork = await forSeconds(seconds, clients, warm);
  worker.postMessage('work');
  await new Promise((r) => worker.once('message', r));
  // ---- tool calls/s: ORS HTTP+SSE vs bare node:http
  const orsCalls = await forSeconds(seconds, clients, orsLoop);
  const bareRate = await forSeconds(seconds, clients, async () => async () => {
    await orsPost(`http://127.0.0.1:${ports.bare}`, '/medagentbench/call', CALL, 'x');
    return 1;
  });
  // ---- episodes/s (reset, 4 searches, finish graded)
  const wsEpisodes = await forSeconds(seconds, clients, async (i) => {
    const c = await wsClient(wsUrl);
    let k = i;
    return async () => {
      await c.send(JSON.stringify({ type: 'reset', data: { split: 'test', index: k++ % 300 } }));
      for (let j = 0; j < 4; j++) await c.send(stepMsg);
      await c.send(finishMsg);
      return 1;
    };
  });
  const orsEpisodes = await forSeconds(seconds, clients, async (i) => {
    let k = i;
    return async () => {
      const sid = await orsOpen(env, k++ % 300);
      for (let j = 0; j < 4; j++) await orsPost(env, '/medagentbench/call', CALL, sid);
      await orsPost(env, '/medagentbench/call', { name: 'finish', input: { answer: [] } }, sid);
      await orsPost(env, '/delete', undefined, sid);
      await orsPost(env, '/delete_session', undefined, sid);
      return 1;
    };
  });
  // ---- reset latency over the wire (one client, sequential)
  const c = await wsClient(wsUrl);
  const wsLat: number[] = [];
  for (let i = 0; i < resets; i++) {
    const t = performance.now();
    await c.send(JSON.stringify({ type: 'reset', data: { split: 'test', index: i % 300 } }));
    wsLat.push(performance.now() - t);
  }
  c.close();
  const orsLat: number[] = [];
  for (let i = 0; i < resets; i++) {
    const t = performance.now();
    const sid = await orsOpen(env, i % 300);
    orsLat.push(performance.now() - t);
    await orsPost(env, '/delete', undefined, sid);
  }
  wsLat.sort((a, b) => a - b);
  orsLat.sort((a, b) => a - b);

  worker.postMessage('close');
  await new Promise((r) => worker.once('message', r));
  await worker.terminate();

  const ratioWs = wsCalls.perSec / echoRate.perSec;
  const ratioHttp = orsCalls.perSec / bareRate.perSec;
  const mb = (b: number) => fmt(b / 2 ** 20, 0);
  console.log('');
  console.log('| surface | tool calls/s | bare server | ratio | episodes/s | reset p50 | reset p99 |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(
    `| OpenEnv WS /ws | ${fmt(wsCalls.perSec, 0)} | ${fmt(echoRate.perSec, 0)} (ws echo) | ${fmt(ratioWs * 100, 0)} % | ${fmt(wsEpisodes.perSec, 0)} | ${fmt(pct(wsLat, 50), 2)} ms | ${fmt(pct(wsLat, 99), 2)} ms |`,
  );
  console.log(
    `| OpenEnv WS /ws, calls answered without the search | ${fmt(wsNoWork.perSec, 0)} | ${fmt(echoRate.perSec, 0)} (ws echo) | ${fmt((wsNoWork.perSec / echoRate.perSec) * 100, 0)} % | | | |`,
  );
  console.log(
    `| ORS HTTP+SSE | ${fmt(orsCalls.perSec, 0)} | ${fmt(bareRate.perSec, 0)} (node:http) | ${fmt(ratioHttp * 100, 0)} % | ${fmt(orsEpisodes.perSec, 0)} | ${fmt(pct(orsLat, 50), 2)} ms | ${fmt(pct(orsLat, 99), 2)} ms |`,
  );
  console.log('');
  console.log(
    `memory: ${mem.sessions.toLocaleString('en-US')} live sessions with one write each: +${mb(mem.extra)} MiB RSS, +${mb(mem.heap)} MiB heap (${fmt(mem.heap / mem.sessions / 1024, 1)} KiB per session), opened and written in ${fmt(mem.ms / 1000, 2)} s; heap +${mb(mem.afterClose)} MiB after closing them${mem.gc ? '' : ' (run with --expose-gc for settled figures)'}`,
  );
  const goals = [
    [`reset p50 ≤ 1 ms over the wire (WS ${fmt(pct(wsLat, 50), 2)} ms)`, pct(wsLat, 50) <= 1],
    [`tool-call throughput ≥ 50 % of the bare server (WS ${fmt(ratioWs * 100, 0)} %, HTTP ${fmt(ratioHttp * 100, 0)} %)`, ratioWs >= 0.5 && ratioHttp >= 0.5],
    [
      `${mem.sessions.toLocaleString('en-US')} live sessions with one write in ≤ 1 GB extra RSS (${mb(mem.extra)} MiB RSS, ${mb(mem.heap)} MiB heap)`,
      Math.max(mem.extra, mem.heap) <= 2 ** 30,
    ],
  ] as const;
  for (const [what, ok] of goals) console.log(`goal ${ok ? 'met' : 'MISSED'}: ${what}`);
}

if (isMainThread) {
  main().catch((e) => {
    console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
} else if ((workerData as { role?: string })?.role === 'server') {
  workerMain().catch((e) => {
    console.error(`bench worker: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  });
}
