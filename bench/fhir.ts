/**
 * FHIR store and server benchmark on the full MedAgentBench replica world.
 *
 *   npm run bench:fhir            (node --import tsx --expose-gc bench/fhir.ts)
 *   options: --seconds N (HTTP phase per server, default 4), --concurrency N (default 8), --sessions N (default 10000),
 *            --sessions-only (boot, then the sessions section alone)
 *
 * Prints: boot time and heap; in-process search µs (p50/p99) on the MedAgentBench agent/grader query mix, and the
 * full in-process request (search + materialise + HAPI pretty print); HTTP requests/s and latency p50/p99 for the
 * same mix over a real loopback port, next to a bare node:http server answering the same bytes, measured in the same
 * run (servers in a worker thread, load generator on the main thread), as a ratio.
 * Goals: in-process search p50 ≤ 100 µs, boot ≤ 3 s, heap ≤ 1.5 GB, HTTP throughput ≥ 50 % of the bare server.
 * Last, the sessions section (bench/fhir-sessions.ts): memory per live session, creation rate, memory after dropping.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createFhirApp, createFhirHandler, startFhirServer, FHIR_CONTENT_TYPE } from '../src/fhir/server.js';
import { handlerTransport } from '../src/fhir/client.js';
import type { FhirStore } from '../src/fhir/store.js';
import { loadWorld } from '../src/worlds/index.js';
import { numberArg } from './args.js';
import { sessionsSection } from './fhir-sessions.js';

interface Q {
  type: string;
  query: string;
  kind: string;
}

/** The MedAgentBench agent and grader queries, over the 100 cohort patients (deterministic order). */
function queryMix(store: FhirStore, patientIds: string[]): Q[] {
  const qs: Q[] = [];
  const enc = encodeURIComponent;
  const cohort = patientIds.slice(0, 100);
  const labs = ['MG', 'K', 'GLU', 'A1C'];
  cohort.forEach((mrn, i) => {
    const p = store.read('Patient', mrn)!;
    const given = p.name?.[0]?.given?.[0] ?? 'X';
    const family = p.name?.[0]?.family ?? 'X';
    const code = labs[i % 4];
    qs.push({ type: 'Patient', query: `identifier=${mrn}`, kind: 'Patient?identifier' });
    qs.push({ type: 'Patient', query: `name=${enc(given)}&name=${enc(family)}&birthdate=${p.birthDate}`, kind: 'Patient?name&name&birthdate' });
    qs.push({ type: 'Patient', query: `family=${enc(family)}&given=${enc(given)}&birthdate=${p.birthDate}`, kind: 'Patient?family&given&birthdate' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&code=${code}`, kind: 'Observation?patient&code' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&code=${code}&_sort=-date`, kind: 'Observation?patient&code&_sort=-date' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&code=${code}&_count=5000`, kind: 'Observation?patient&code&_count=5000 (grader)' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&category=vital-signs`, kind: 'Observation?patient&category=vital-signs' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&code=GLU&date=ge2023-11-12T10:15:00%2B00:00`, kind: 'Observation?patient&code&date=ge' });
    qs.push({ type: 'Observation', query: `patient=${mrn}&date=ge2023-11-12&date=le2023-11-13`, kind: 'Observation?patient&date range' });
    qs.push({ type: 'Condition', query: `patient=${mrn}`, kind: 'Condition?patient' });
    qs.push({ type: 'Condition', query: `patient=${mrn}&category=problem-list-item`, kind: 'Condition?patient&category' });
    qs.push({ type: 'MedicationRequest', query: `patient=${mrn}`, kind: 'MedicationRequest?patient' });
    qs.push({ type: 'Procedure', query: `patient=${mrn}`, kind: 'Procedure?patient' });
  });
  return qs;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (n: number, d = 1) => n.toFixed(d);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function workerMain(): Promise<void> {
  const w = await loadWorld({ world: 'medagentbench' });
  const qs = queryMix(w.store, w.patientIds);
  const server = await startFhirServer(w.store);
  const noCache = await startFhirServer(w.store, { responseCacheBytes: 0 });
  // Every request carries `Host: localhost:8080` (the official base), so all servers answer identical bytes.
  const origin = 'http://localhost:8080';
  // Precompute the exact bytes our server answers (same Host as the load generator will send).
  const app = createFhirApp(w.store);
  const bytes = new Map<string, Buffer>();
  for (const q of qs) {
    const path = `/fhir/${q.type}?${q.query}&_format=json`;
    const res = await app.fetch(new Request(origin + path));
    bytes.set(path, Buffer.from(await res.text()));
  }
  const bare = http.createServer((req, res) => {
    const b = bytes.get(req.url ?? '');
    if (!b) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': FHIR_CONTENT_TYPE, 'content-length': b.length });
    res.end(b);
  });
  bare.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  parentPort!.postMessage({ ours: server.port, noCache: noCache.port, bare: (bare.address() as AddressInfo).port });
  parentPort!.once('message', async () => {
    await server.close();
    await noCache.close();
    bare.closeAllConnections();
    bare.close();
    parentPort!.postMessage('closed');
  });
}

async function load(
  port: number,
  paths: string[],
  seconds: number,
  concurrency: number,
): Promise<{ rps: number; p50: number; p99: number; n: number; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  let bytes = 0;
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const one = (path: string) =>
    new Promise<void>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.get({ host: '127.0.0.1', port, path, agent, headers: { host: 'localhost:8080' } }, (res) => {
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`bench: ${path} → ${res.statusCode}`));
          lat.push(performance.now() - t0);
          resolve();
        });
      });
      req.on('error', reject);
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await one(paths[next++ % paths.length]);
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: lat.length / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length, bytes };
}

async function fetchBytes(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { host: 'localhost:8080' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', reject);
  });
}

// ---- server hardening block
/**
 * Fire the largest search the server answers in one page (`Observation?_count=10000`, every Observation when
 * unfiltered) and, while its response is produced and read, small `Patient/{id}` reads one after another (a client
 * waiting for each answer); their latencies over a few rounds, next to the same reads with nothing else running.
 */
async function smallReadBesideMaximalSearch(
  port: number,
  patientId: string,
): Promise<{
  bigPath: string;
  bigBytes: number;
  bigMs: number;
  smallBytes: number;
  p50: number;
  p99: number;
  max: number;
  n: number;
  rounds: number;
  aloneP50: number;
  aloneMax: number;
}> {
  const bigPath = '/fhir/Observation?_count=10000';
  const smallPath = `/fhir/Patient/${patientId}`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = (path: string) =>
    new Promise<{ ms: number; bytes: number }>((resolve, reject) => {
      const t0 = performance.now();
      http
        .get({ host: '127.0.0.1', port, path, agent, headers: { host: 'localhost:8080' } }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
          });
          res.on('end', () =>
            res.statusCode === 200 ? resolve({ ms: performance.now() - t0, bytes }) : reject(new Error(`bench: ${path} → ${res.statusCode}`)),
          );
        })
        .on('error', reject);
    });
  const alone: number[] = [];
  for (let i = 0; i < 50; i++) alone.push((await get(smallPath)).ms);
  alone.sort((a, b) => a - b);
  const lat: number[] = [];
  let bigBytes = 0;
  let bigMs = 0;
  let smallBytes = 0;
  const rounds = 3;
  for (let r = 0; r < rounds; r++) {
    let done = false;
    const bigReq = get(bigPath).then((x) => {
      done = true;
      bigBytes = x.bytes;
      bigMs = x.ms;
    });
    await new Promise((res) => setTimeout(res, 1));
    while (!done) {
      const x = await get(smallPath);
      lat.push(x.ms);
      smallBytes = x.bytes;
    }
    await bigReq;
  }
  agent.destroy();
  lat.sort((a, b) => a - b);
  return {
    bigPath,
    bigBytes,
    bigMs,
    smallBytes,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: lat[lat.length - 1] ?? 0,
    n: lat.length,
    rounds,
    aloneP50: pct(alone, 50),
    aloneMax: alone[alone.length - 1] ?? 0,
  };
}
// ---- end of server hardening block

async function main(): Promise<void> {
  const seconds = numberArg('seconds', 3);
  const concurrency = numberArg('concurrency', 8);
  const sessions = numberArg('sessions', 10_000, { integer: true });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const tBoot = performance.now();
  const cpu0 = process.cpuUsage();
  const w = await loadWorld({ world: 'medagentbench' });
  const boot = performance.now() - tBoot;
  const bootCpu = process.cpuUsage(cpu0);
  gc?.();
  const heap = process.memoryUsage().heapUsed;
  console.log(`world medagentbench: ${w.total.toLocaleString('en-US')} resources ${JSON.stringify(w.counts)}`);
  console.log(`boot (generate + index): ${fmt(boot, 0)} ms wall, ${fmt((bootCpu.user + bootCpu.system) / 1000, 0)} ms CPU   [goal ≤ 3000 ms]`);
  console.log(`heap used: ${fmt(heap / 2 ** 20, 0)} MiB (world ${fmt((heap - heap0) / 2 ** 20, 0)} MiB)   [goal ≤ 1536 MiB]`);

  const store = w.store;
  if (process.argv.includes('--sessions-only')) return sessionsSection(store, w.patientIds, sessions);
  const qs = queryMix(store, w.patientIds);
  // In-process search (parse + index lookup + filter + sort; no materialisation).
  for (let r = 0; r < 2; r++) for (const q of qs) store.search(q.type, q.query); // warm-up
  const rounds = 5;
  const all: number[] = [];
  const byKind = new Map<string, number[]>();
  let hits = 0;
  for (let r = 0; r < rounds; r++) {
    for (const q of qs) {
      const t0 = process.hrtime.bigint();
      const res = store.search(q.type, q.query);
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      hits += res.total;
      all.push(us);
      let l = byKind.get(q.kind);
      if (!l) byKind.set(q.kind, (l = []));
      l.push(us);
    }
  }
  all.sort((a, b) => a - b);
  console.log(`\nin-process store.search over ${qs.length} queries × ${rounds} (${fmt(hits / rounds, 0)} hits per round):`);
  console.log(`  p50 ${fmt(pct(all, 50))} µs   p99 ${fmt(pct(all, 99))} µs   [goal p50 ≤ 100 µs]`);
  for (const [kind, l] of byKind) {
    l.sort((a, b) => a - b);
    console.log(`  ${kind.padEnd(48)} p50 ${fmt(pct(l, 50)).padStart(7)} µs  p99 ${fmt(pct(l, 99)).padStart(7)} µs`);
  }
  // Full in-process request: routing, search, materialisation, HAPI pretty print.
  const app = createFhirApp(store, { responseCacheBytes: 0 });
  const full: number[] = [];
  const fullByKind = new Map<string, number[]>();
  for (let r = 0; r < 3; r++) {
    for (const q of qs) {
      const t0 = process.hrtime.bigint();
      const res = await app.fetch(new Request(`http://localhost:8080/fhir/${q.type}?${q.query}&_format=json`));
      await res.arrayBuffer();
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (r < 2) continue;
      full.push(us);
      let l = fullByKind.get(q.kind);
      if (!l) fullByKind.set(q.kind, (l = []));
      l.push(us);
    }
  }
  full.sort((a, b) => a - b);
  console.log(`\nin-process app.fetch without the response cache (routing + search + HAPI print; entry cache warm):`);
  console.log(`  p50 ${fmt(pct(full, 50))} µs   p99 ${fmt(pct(full, 99))} µs`);
  for (const [kind, l] of fullByKind) {
    l.sort((a, b) => a - b);
    console.log(`  ${kind.padEnd(48)} p50 ${fmt(pct(l, 50)).padStart(7)} µs  p99 ${fmt(pct(l, 99)).padStart(7)} µs`);
  }

  // ---- server hardening block: in-process handler throughput (the eval harness's transport), no response cache.
  const viaHandler = handlerTransport(createFhirHandler(store, { responseCacheBytes: 0 }));
  const handlerUrls = qs.map((q) => `http://localhost:8080/fhir/${q.type}?${q.query}&_format=json`);
  for (const u of handlerUrls) await viaHandler({ method: 'GET', url: u }); // warm-up
  const handlerLat: number[] = [];
  const tHandler = performance.now();
  for (let r = 0; r < 3; r++) {
    for (const u of handlerUrls) {
      const t0 = process.hrtime.bigint();
      await viaHandler({ method: 'GET', url: u });
      handlerLat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  }
  const handlerRps = handlerLat.length / ((performance.now() - tHandler) / 1000);
  handlerLat.sort((a, b) => a - b);
  console.log(`\nin-process handlerTransport without the response cache (what ehrgym eval uses), one request at a time:`);
  console.log(`  ${fmt(handlerRps, 0)} req/s   p50 ${fmt(pct(handlerLat, 50))} µs   p99 ${fmt(pct(handlerLat, 99))} µs`);
  // ---- end of server hardening block

  gc?.();
  console.log(
    `  heap used after these requests: ${fmt(process.memoryUsage().heapUsed / 2 ** 20, 0)} MiB (entry texts are bounded by renderCacheChars; Buffers count as external: ${fmt(process.memoryUsage().external / 2 ** 20, 0)} MiB)`,
  );

  // HTTP: servers in a worker thread, load from here.
  // The worker runs this same file through tsx's loader API (loader hooks are per thread).
  const self = JSON.stringify(import.meta.url);
  const worker = new Worker(`import('tsx/esm/api').then((m) => m.tsImport(${self}, ${self}))`, {
    eval: true,
    workerData: { role: 'server' },
  });
  const ports = await new Promise<{ ours: number; noCache: number; bare: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const paths = qs.map((q) => `/fhir/${q.type}?${q.query}&_format=json`);
  for (const p of [paths[0], paths[5], paths[7]]) {
    const [a, b, c] = [await fetchBytes(ports.ours, p), await fetchBytes(ports.bare, p), await fetchBytes(ports.noCache, p)];
    if (a !== b || c !== b) throw new Error(`bench: servers disagree on ${p}`);
  }
  // Warm-up: every query once on each server (JIT, lazy indexes, entry cache), then a short timed run.
  for (const port of [ports.ours, ports.noCache, ports.bare]) {
    for (let i = 0; i < paths.length; i += concurrency) await Promise.all(paths.slice(i, i + concurrency).map((p) => fetchBytes(port, p)));
    await load(port, paths, 0.3, concurrency);
  }
  // Alternate short slices so both servers see the same machine load (the ratio is what counts).
  const slices = 8;
  type L = Awaited<ReturnType<typeof load>>;
  const parts: Array<{ ours: L; noCache: L; bare: L }> = [];
  for (let i = 0; i < slices; i++) {
    const ours = await load(ports.ours, paths, seconds / slices, concurrency);
    const noCache = await load(ports.noCache, paths, seconds / slices, concurrency);
    const bare = await load(ports.bare, paths, seconds / slices, concurrency);
    parts.push({ ours, noCache, bare });
  }
  const merge = (xs: Array<Awaited<ReturnType<typeof load>>>) => ({
    rps: xs.reduce((a, x) => a + x.rps, 0) / xs.length,
    p50: median(xs.map((x) => x.p50)),
    p99: median(xs.map((x) => x.p99)),
    n: xs.reduce((a, x) => a + x.n, 0),
    bytes: xs.reduce((a, x) => a + x.bytes, 0),
  });
  const ours = merge(parts.map((p) => p.ours));
  const bare = merge(parts.map((p) => p.bare));
  const noCache = merge(parts.map((p) => p.noCache));
  console.log(
    `\nHTTP over loopback, ${concurrency} keep-alive connections, ${seconds} s per server in ${slices} alternating slices, same ${paths.length}-query mix:`,
  );
  console.log(
    `  ehrgym server (default)  : ${fmt(ours.rps, 0).padStart(6)} req/s   p50 ${fmt(ours.p50, 2)} ms   p99 ${fmt(ours.p99, 2)} ms   (${fmt(ours.bytes / ours.n / 1024)} KiB/response)`,
  );
  console.log(
    `  ehrgym, no response cache: ${fmt(noCache.rps, 0).padStart(6)} req/s   p50 ${fmt(noCache.p50, 2)} ms   p99 ${fmt(noCache.p99, 2)} ms   (every request searched and assembled)`,
  );
  console.log(
    `  bare node:http           : ${fmt(bare.rps, 0).padStart(6)} req/s   p50 ${fmt(bare.p50, 2)} ms   p99 ${fmt(bare.p99, 2)} ms   (same bytes, precomputed)`,
  );
  console.log(
    `  ratio: ${fmt((100 * ours.rps) / bare.rps, 0)} % of the bare server's throughput   [goal ≥ 50 %]; without the response cache ${fmt((100 * noCache.rps) / bare.rps, 0)} %`,
  );
  const ratios = parts.map((p) => (100 * p.ours.rps) / p.bare.rps);
  const ratiosNc = parts.map((p) => (100 * p.noCache.rps) / p.bare.rps);
  console.log(`  per slice (ours/bare): ${ratios.map((r) => fmt(r, 0) + '%').join(' ')}  median ${fmt(median(ratios), 0)} %`);
  console.log(`  per slice (no cache/bare): ${ratiosNc.map((r) => fmt(r, 0) + '%').join(' ')}  median ${fmt(median(ratiosNc), 0)} %`);
  // ---- server hardening block: in-process handler vs the bare server, and a small read beside a maximal search.
  console.log(
    `  in-process handlerTransport: ${fmt((100 * handlerRps) / bare.rps, 0)} % of the bare server's HTTP throughput (one request at a time vs ${concurrency} connections)`,
  );
  const big = await smallReadBesideMaximalSearch(ports.ours, w.patientIds[0]!);
  console.log(
    `\nsmall read latency beside a maximal search (GET ${big.bigPath} → ${fmt(big.bigBytes / 2 ** 20)} MiB in ${fmt(big.bigMs, 0)} ms; GET /fhir/Patient/{id} ≈ ${fmt(big.smallBytes / 1024)} KiB, one after another meanwhile, ${big.rounds} rounds):`,
  );
  console.log(`  small read p50 ${fmt(big.p50, 2)} ms   p99 ${fmt(big.p99, 2)} ms   max ${fmt(big.max, 2)} ms   (${big.n} reads)   [goal max < 100 ms]`);
  console.log(`  the same read alone: p50 ${fmt(big.aloneP50, 2)} ms   max ${fmt(big.aloneMax, 2)} ms`);
  // ---- end of server hardening block
  console.log(
    `  machine load average during the run: ${(await import('node:os'))
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  worker.postMessage('close');
  await new Promise((r) => worker.once('message', r));
  await worker.terminate();

  await sessionsSection(store, w.patientIds, sessions);
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
