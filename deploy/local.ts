/**
 * N ehrgym replicas and a balancer on this machine, as child processes: what test/scale-replicas.test.ts and
 * bench/scale.ts run. Replicas are `ehrgym serve` or `ehrgym env serve` processes on free loopback ports, each with
 * `--replica-id r<i>`; the balancer is HAProxy or nginx in the foreground with the configuration rendered from this
 * folder's template into a folder of the caller's (pid and temporary files there too), so nothing needs root.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BalancerKind, type Replica, renderBalancer } from './balancer.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The executable `name` on PATH or in the sbin folders (where Debian puts haproxy and nginx), or undefined. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port nothing listens on now (the kernel's pick; another process could take it before it is used). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on host:port. */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export interface LocalProcess {
  readonly pid: number;
  /** Everything the process printed on stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Send `signal` (default SIGTERM) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function wrap(child: ChildProcess): LocalProcess & { out: () => string } {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    pid: child.pid!,
    stderr: () => stderr,
    out: () => stdout,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface LocalReplica extends LocalProcess, Replica {
  /** The replica's own URL (`http://127.0.0.1:PORT`). */
  url: string;
}

/**
 * Start one replica: `ehrgym serve …` (`command` 'serve') or `ehrgym env serve …` ('env') with `--port 0 --json
 * --replica-id <tag>` and `args`; resolves once it prints its startup summary.
 */
export async function startReplica(command: 'serve' | 'env', tag: string, args: readonly string[] = [], timeoutMs = 120_000): Promise<LocalReplica> {
  const cli = command === 'serve' ? ['serve'] : ['env', 'serve'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...cli, '--port', '0', '--json', '--replica-id', tag, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = wrap(child);
  const summary = await new Promise<{ url: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`replica ${tag} not ready after ${timeoutMs} ms: ${p.stderr()}`));
    }, timeoutMs);
    const onData = () => {
      const line = p.out().split('\n', 1)[0]!;
      if (!p.out().includes('\n')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      try {
        resolve(JSON.parse(line) as { url: string });
      } catch {
        reject(new Error(`replica ${tag}: unexpected startup line ${line}`));
      }
    };
    child.stdout!.on('data', onData);
    void p.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`replica ${tag} exited (${code}) before it was ready: ${p.stderr()}`));
    });
  });
  const url = summary.url.replace(/\/fhir\/?$/, '');
  return { ...p, tag, url, address: new URL(url).host };
}

/** Start `n` replicas r0…r(n−1) at once. */
export async function startReplicas(command: 'serve' | 'env', n: number, args: readonly string[] = []): Promise<LocalReplica[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => startReplica(command, `r${i}`, args)));
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(ok.map((r) => r.stop('SIGKILL')));
    throw (failed as PromiseRejectedResult).reason;
  }
  return ok;
}

export interface LocalBalancer extends LocalProcess {
  kind: BalancerKind;
  url: string;
  port: number;
  /** The rendered configuration file. */
  configPath: string;
}

/**
 * Render the balancer's configuration for `replicas` into `dir`, run the balancer in the foreground on a free loopback
 * port and resolve once it accepts connections. `binary`: the haproxy or nginx executable (found when omitted).
 */
export async function startBalancer(kind: BalancerKind, replicas: readonly Replica[], dir: string, binary = findBinary(kind)): Promise<LocalBalancer> {
  if (!binary) throw new Error(`${kind} is not installed`);
  mkdirSync(dir, { recursive: true });
  // started by root, nginx runs its workers as another user (`nobody`): they must reach the temporary folders it makes
  // for them in `dir` (request bodies over 16 KiB are buffered there)
  if (kind === 'nginx') chmodSync(dir, 0o755);
  const port = await freePort();
  const bind = `127.0.0.1:${port}`;
  const configPath = join(dir, kind === 'haproxy' ? 'haproxy.cfg' : 'nginx.conf');
  writeFileSync(configPath, renderBalancer(kind, { bind, replicas, runtimeDir: dir }));
  const args = kind === 'haproxy' ? ['-db', '-f', configPath] : ['-p', `${dir}/`, '-c', configPath, '-e', 'stderr'];
  const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = wrap(child);
  let exitedEarly = false;
  void p.exited.then(() => (exitedEarly = true));
  const until = Date.now() + 15_000;
  while (!(await accepts('127.0.0.1', port))) {
    if (exitedEarly) throw new Error(`${kind} exited: ${p.stderr()}`);
    if (Date.now() > until) {
      await p.stop('SIGKILL');
      throw new Error(`${kind} does not listen on ${bind}: ${p.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...p, kind, url: `http://${bind}`, port, configPath };
}
