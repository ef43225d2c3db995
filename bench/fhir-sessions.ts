/**
 * The sessions section of `npm run bench:fhir`: what live sessions cost on the loaded world.
 *
 * N sessions (1,000, then up to `--sessions`, default 10,000) each POST one ~500-byte Observation in-process
 * (`store.create`), the way an episode's first write does. Prints RSS and V8 heap per live session at 1k and N (after
 * a forced GC), the creation rate, and RSS/heap once every session is dropped (forced GC again); then the creation
 * rate through the HTTP handler in-process and over a loopback socket (server and client in this process).
 * Goals: ≤ 100 KB of RSS per session, ≥ 5,000 sessions/s in-process, the memory back after dropping.
 */
import http from 'node:http';
import { createFhirHandler, startFhirServer } from '../src/fhir/server.js';
import type { FhirStore } from '../src/fhir/store.js';
import type { Resource } from '../src/fhir/types.js';

const fmt = (n: number, d = 1) => n.toFixed(d);
const KiB = 1024;
const MiB = 2 ** 20;

/** An Observation of about 500 bytes of JSON (a blood-pressure reading with a note), varied per session. */
function observation(patient: string, i: number): Resource {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://hl7.org/fhir/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel' }], text: 'BP' },
    subject: { reference: `Patient/${patient}` },
    effectiveDateTime: '2023-11-13T10:15:00+00:00',
    issued: '2023-11-13T10:15:00+00:00',
    valueString: `${110 + (i % 40)}/${70 + (i % 20)} mmHg`,
    note: [{ text: `Measured by the agent in episode ${i}, seated, left arm, after five minutes of rest.` }],
  };
}

interface Mem {
  rss: number;
  heap: number;
  /** ArrayBuffer backing stores (allocated, resident or not). */
  buffers: number;
}

function settledMemory(gc: () => void): Mem {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, buffers: m.arrayBuffers };
}

export async function sessionsSection(store: FhirStore, patientIds: string[], maxSessions: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('bench: run with --expose-gc (npm run bench:fhir)');
  const cohort = patientIds.slice(0, 100);
  const body = observation(cohort[0], 0);
  const jsonBytes = Buffer.byteLength(JSON.stringify(body));
  const n1 = Math.min(1000, maxSessions);
  const capBefore = store.maxSessions;
  if (store.maxSessions < maxSessions) store.maxSessions = maxSessions;

  // Warm-up (JIT), then drop everything.
  for (let i = 0; i < 2000; i++) store.create(observation(cohort[i % cohort.length], i), `warm-${i}`);
  for (let i = 0; i < 2000; i++) store.dropSession(`warm-${i}`);
  const bodies = Array.from({ length: maxSessions }, (_, i) => observation(cohort[i % cohort.length], i));
  const ids = Array.from({ length: maxSessions }, (_, i) => `bench-${i}`);

  const m0 = settledMemory(gc);
  const cpu0 = process.cpuUsage();
  let t0 = performance.now();
  for (let i = 0; i < n1; i++) store.create(bodies[i], ids[i]);
  let ms = performance.now() - t0;
  const cpu1 = process.cpuUsage(cpu0);
  const m1 = settledMemory(gc);
  const cpu2 = process.cpuUsage();
  t0 = performance.now();
  for (let i = n1; i < maxSessions; i++) store.create(bodies[i], ids[i]);
  ms += performance.now() - t0;
  const cpu3 = process.cpuUsage(cpu2);
  const cpuMs = (cpu1.user + cpu1.system + cpu3.user + cpu3.system) / 1000;
  const mN = settledMemory(gc);
  if (store.sessionCount < maxSessions) throw new Error(`bench: ${store.sessionCount} sessions live, expected ${maxSessions}`);
  const rate = maxSessions / (ms / 1000);
  t0 = performance.now();
  for (const id of ids) store.dropSession(id);
  const dropMs = performance.now() - t0;
  await new Promise((r) => setImmediate(r));
  settledMemory(gc);
  // V8 hands freed pages back to the OS from a background thread: give it a moment.
  await new Promise((r) => setTimeout(r, 1000));
  const mD = settledMemory(gc);

  const per = (m: Mem, n: number) => ({ rss: (m.rss - m0.rss) / n, heap: (m.heap - m0.heap) / n, buffers: (m.buffers - m0.buffers) / n });
  const p1 = per(m1, n1);
  const pN = per(mN, maxSessions);
  console.log(`\nsessions: each opened by one in-process POST of a ${jsonBytes}-byte Observation (store.create), forced GC before each figure:`);
  const rows: Array<[number, ReturnType<typeof per>]> =
    n1 < maxSessions
      ? [
          [n1, p1],
          [maxSessions, pN],
        ]
      : [[n1, p1]];
  for (const [n, p] of rows) {
    console.log(
      `  ${String(n).padStart(6)} live: RSS +${fmt(p.rss / KiB)} KiB/session (${fmt((100 * p.rss) / 100_000, 1)} % of the 100 KB goal), V8 heap +${fmt(p.heap / KiB, 2)} KiB/session (${fmt(p.heap / jsonBytes, 1)}× the JSON), ArrayBuffers +${fmt(p.buffers / KiB, 1)} KiB/session`,
    );
  }
  console.log(`  total for ${maxSessions}: RSS +${fmt((mN.rss - m0.rss) / MiB)} MiB, heap +${fmt((mN.heap - m0.heap) / MiB)} MiB   [goal ≤ 1 GB for 10,000]`);
  const cpuRate = maxSessions / (cpuMs / 1000);
  console.log(
    `  creation in-process: ${fmt(rate, 0)} sessions/s wall (${fmt((100 * rate) / 5000, 0)} % of the 5,000/s goal), ${fmt(cpuRate, 0)} per CPU-second (GC threads included; the wall figure drops when other work shares the cores); dropping all: ${fmt(dropMs, 1)} ms`,
  );
  const peak = mN.rss - m0.rss;
  console.log(
    `  after dropping all: RSS ${mD.rss >= m0.rss ? '+' : ''}${fmt((mD.rss - m0.rss) / MiB)} MiB, heap ${mD.heap >= m0.heap ? '+' : ''}${fmt((mD.heap - m0.heap) / MiB, 2)} MiB over the start (${fmt(peak > 0 ? (100 * (mN.rss - mD.rss)) / peak : 100, 0)} % of the RSS growth returned)`,
  );

  // The same through the HTTP layer: the handler in-process, then a loopback socket.
  const viaHandler = Math.min(2000, maxSessions);
  const handle = createFhirHandler(store, { responseCacheBytes: 0 });
  const texts = bodies.slice(0, viaHandler).map((b) => Buffer.from(JSON.stringify(b)));
  const post = (i: number) =>
    handle({
      method: 'POST',
      url: `http://localhost:8080/fhir/_session/h-${i}/Observation`,
      header: (name) => (name === 'content-type' ? 'application/fhir+json' : undefined),
      body: async () => texts[i],
    });
  t0 = performance.now();
  for (let i = 0; i < viaHandler; i++) {
    const r = await post(i);
    if (r.status !== 201) throw new Error(`bench: handler POST → ${r.status}`);
  }
  const handlerRate = viaHandler / ((performance.now() - t0) / 1000);
  for (let i = 0; i < viaHandler; i++) store.dropSession(`h-${i}`);

  const server = await startFhirServer(store, { responseCacheBytes: 0 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const httpPost = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: `/fhir/_session/x-${i}/Observation`,
          agent,
          headers: { host: 'localhost:8080', 'content-type': 'application/fhir+json', 'content-length': texts[i].length },
        },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`bench: HTTP POST → ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(texts[i]);
    });
  let next = 0;
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < viaHandler) await httpPost(next++);
    }),
  );
  const httpRate = viaHandler / ((performance.now() - t0) / 1000);
  agent.destroy();
  await server.close();
  for (let i = 0; i < viaHandler; i++) store.dropSession(`x-${i}`);
  console.log(
    `  creation through the handler in-process: ${fmt(handlerRate, 0)} sessions/s (${fmt((100 * handlerRate) / rate, 0)} % of store.create); over loopback HTTP, 8 keep-alive connections, client in the same process: ${fmt(httpRate, 0)} sessions/s (${viaHandler} sessions each)`,
  );
  store.maxSessions = capBefore;
}
