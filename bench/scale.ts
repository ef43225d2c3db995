/**
 * `npm run bench:scale` — throughput of 1, 2 and 4 `ehrgym env serve` replicas behind HAProxy on this machine
 * (docs/scale.md). Four replicas are started once (deploy/local.ts); for each count N a balancer is started in front
 * of the first N, and `--clients` closed-loop clients play episodes through it for `--seconds`: ORS `create_session`,
 * `create`, an Observation write, its read-back (checked: the episode's own marker, nothing else) and `delete` — or
 * the OpenEnv JSON-RPC / WebSocket equivalent with `--surface rpc|ws`. Printed: episodes/s, p50/p99 episode
 * latency, the ratio to one replica; and the same load on one replica without a balancer (the balancer's own cost).
 * All setups run at once and are measured in alternating 2-second slices (the machine may be shared).
 *
 * Options: --seconds N (10), --clients N (32), --surface ors|rpc|ws (ors), --balancer haproxy|nginx (haproxy).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, type LocalBalancer, type LocalReplica, startBalancer, startReplicas } from '../deploy/local.js';
import { marker, OrsEpisode, quantile, RpcEpisode, type ScaleEpisode, WsEpisode } from '../test/helpers/scale-episodes.js';
import { numberArg } from './args.js';

const seconds = numberArg('seconds', 10);
const clients = numberArg('clients', 32, { integer: true });
const surfaceAt = process.argv.indexOf('--surface');
const surface = surfaceAt >= 0 ? process.argv[surfaceAt + 1] : 'ors';
if (surface !== 'ors' && surface !== 'rpc' && surface !== 'ws') throw new Error('bench: --surface must be ors, rpc or ws');
const balancerAt = process.argv.indexOf('--balancer');
const kind = balancerAt >= 0 ? process.argv[balancerAt + 1] : 'haproxy';
if (kind !== 'haproxy' && kind !== 'nginx') throw new Error('bench: --balancer must be haproxy or nginx');
if (kind === 'nginx' && surface === 'rpc') throw new Error('bench: nginx does not route OpenEnv JSON-RPC sessions (docs/scale.md); use haproxy');
if (!findBinary(kind)) {
  process.stderr.write(`bench: ${kind} is not installed (apt-get install ${kind})\n`);
  process.exit(1);
}

/** Length of one measured slice (seconds). */
const SLICE_S = 2;

const make = (base: string, i: number, mk: string): ScaleEpisode =>
  surface === 'ors' ? new OrsEpisode(base, i, mk) : surface === 'rpc' ? new RpcEpisode(base, i, mk) : new WsEpisode(base, i, mk);

interface Slice {
  latencies: number[];
  errors: number;
  seconds: number;
}

interface Figures {
  label: string;
  episodes: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

let next = 0;

/** `clients` loops playing episodes against `base` for `duration` seconds. */
async function load(label: string, base: string, duration: number): Promise<Slice> {
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const until = t0 + duration * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const i = next++;
        const e = make(base, i, marker(`bench-${i}`));
        const s = performance.now();
        try {
          await e.open();
          await e.write();
          const r = await e.read();
          if (!r.ok || r.markers.length !== 1 || r.markers[0] !== e.marker) throw new Error(`episode ${i} read back ${JSON.stringify(r)}`);
          await e.close();
          latencies.push(performance.now() - s);
        } catch (err) {
          errors++;
          if (errors <= 3) process.stderr.write(`bench: ${label}: ${(err as Error).message.slice(0, 300)}\n`);
        }
      }
    }),
  );
  return { latencies, errors, seconds: (performance.now() - t0) / 1000 };
}

const dirs: string[] = [];
const balancers: LocalBalancer[] = [];
let replicas: LocalReplica[] = [];
try {
  const t0 = performance.now();
  replicas = await startReplicas('env', 4, ['--train-size', '5']);
  process.stdout.write(
    `bench:scale — ${surface} episodes (open, write, read back, close), ${clients} clients, ${seconds} s per setup in alternating ${SLICE_S}-s slices, ${kind}; 4 replicas up in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  // warm-up (not measured): each replica plays episodes for 2 s, so no setup pays for compilation
  await Promise.all(replicas.map((r) => load('warm-up', r.url, 2)));
  // every setup up at once, measured in alternating 2-second slices, so a change in the machine's load (it is shared)
  // falls on all of them alike
  const setups: Array<{ label: string; url: string }> = [{ label: '1 replica, no balancer', url: replicas[0]!.url }];
  for (const n of [1, 2, 4]) {
    const dir = mkdtempSync(join(tmpdir(), 'ehrgym-bench-scale-'));
    dirs.push(dir);
    const lb = await startBalancer(kind, replicas.slice(0, n), dir);
    balancers.push(lb);
    setups.push({ label: `${n} replica${n === 1 ? '' : 's'} behind ${kind}`, url: lb.url });
  }
  await new Promise((r) => setTimeout(r, 1000));
  const slices = setups.map(() => [] as Slice[]);
  for (let round = 0; round < Math.max(1, Math.round(seconds / SLICE_S)); round++) {
    for (const [k, s] of setups.entries()) slices[k]!.push(await load(s.label, s.url, SLICE_S));
  }
  const rows: Figures[] = setups.map((s, k) => {
    const all = slices[k]!.flatMap((x) => x.latencies);
    const secs = slices[k]!.reduce((a, x) => a + x.seconds, 0);
    return {
      label: s.label,
      episodes: all.length,
      perSecond: all.length / secs,
      p50: quantile(all, 0.5),
      p99: quantile(all, 0.99),
      errors: slices[k]!.reduce((a, x) => a + x.errors, 0),
    };
  });
  const one = rows[1]!.perSecond;
  process.stdout.write('\n| setup | episodes | episodes/s | vs 1 replica | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(
      `| ${r.label} | ${r.episodes} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / one).toFixed(2)}× | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} |\n`,
    );
  }
  const { loadavg, cpus } = await import('node:os');
  process.stdout.write(
    `\nmachine: ${cpus().length} cores, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} at the end\n`,
  );
} finally {
  await Promise.all([...balancers.map((b) => b.stop('SIGTERM')), ...replicas.map((r) => r.stop('SIGKILL'))]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
