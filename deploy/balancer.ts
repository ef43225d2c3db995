/**
 * Renders the balancer templates of this folder (deploy/haproxy.cfg, deploy/nginx.conf) for a set of replicas: the
 * lines between `#@each replica` and `#@end` are written once per replica with `{{tag}}` and `{{address}}`; `{{bind}}`
 * and `{{runtime_dir}}` are replaced everywhere. The same replicas in the same order give the same bytes.
 *
 *   node --import tsx deploy/balancer.ts haproxy --bind 0.0.0.0:8091 r0=10.0.0.5:8091 r1=10.0.0.6:8091 > haproxy.cfg
 *   node --import tsx deploy/balancer.ts nginx --bind 8091 --runtime-dir /tmp/nginx r0=10.0.0.5:8091 … > nginx.conf
 *
 * Each replica is `<tag>=<host:port>`, `<tag>` being the `--replica-id` it was started with (docs/scale.md).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { REPLICA_ID_RE } from '../src/fhir/replica.js';

export type BalancerKind = 'haproxy' | 'nginx';

export interface Replica {
  /** The replica's `--replica-id`. */
  tag: string;
  /** host:port the balancer connects to. */
  address: string;
}

export interface BalancerOptions {
  /** What the balancer listens on (HAProxy `bind`, nginx `listen`): `127.0.0.1:8091`, `0.0.0.0:8091`, `8091`. */
  bind: string;
  replicas: readonly Replica[];
  /** nginx: folder of its pid file and temporary files (the process must be able to write it). */
  runtimeDir?: string;
}

/** The template file of a balancer. */
export function templatePath(kind: BalancerKind): string {
  return fileURLToPath(new URL(kind === 'haproxy' ? './haproxy.cfg' : './nginx.conf', import.meta.url));
}

const ADDRESS_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const BIND_RE = /^((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]+):)?\d{1,5}$/;
const RUNTIME_DIR_RE = /^\/[A-Za-z0-9_./-]*$/;

/** Throws a RangeError naming the problem unless the options can be rendered. */
export function checkOptions(opts: BalancerOptions): void {
  if (!BIND_RE.test(opts.bind)) throw new RangeError(`bind must be [host:]port, got ${JSON.stringify(opts.bind)}`);
  if (opts.replicas.length === 0) throw new RangeError('at least one replica is needed');
  const seen = new Set<string>();
  for (const r of opts.replicas) {
    if (!REPLICA_ID_RE.test(r.tag)) throw new RangeError(`replica tag ${JSON.stringify(r.tag)} is not a replica id (see --replica-id)`);
    if (seen.has(r.tag)) throw new RangeError(`replica tag ${r.tag} is given twice`);
    seen.add(r.tag);
    if (!ADDRESS_RE.test(r.address)) throw new RangeError(`replica ${r.tag}: address must be host:port, got ${JSON.stringify(r.address)}`);
  }
  if (opts.runtimeDir !== undefined && !RUNTIME_DIR_RE.test(opts.runtimeDir)) {
    throw new RangeError(`runtime dir must be an absolute path of letters, digits, "_", ".", "/" and "-", got ${JSON.stringify(opts.runtimeDir)}`);
  }
}

/** Expand a template's replica blocks and placeholders. */
export function renderTemplate(template: string, opts: BalancerOptions): string {
  checkOptions(opts);
  const globals: Record<string, string> = { bind: opts.bind, runtime_dir: opts.runtimeDir ?? '' };
  // a comment may name a placeholder that does not apply where it stands: kept as written
  const fill = (line: string, vars: Record<string, string>) =>
    line.replace(/\{\{(\w+)\}\}/g, (m, name: string) => {
      const v = vars[name] ?? globals[name];
      if (v === undefined && line.trimStart().startsWith('#')) return m;
      if (v === undefined) throw new RangeError(`template: unknown placeholder ${m}`);
      if (name === 'runtime_dir' && v === '') throw new RangeError('template: this template needs a runtime dir');
      return v;
    });
  const out: string[] = [];
  let block: string[] | undefined;
  for (const line of template.split('\n')) {
    const marker = line.trim();
    if (marker === '#@each replica') {
      if (block) throw new RangeError('template: nested #@each');
      block = [];
    } else if (marker === '#@end') {
      if (!block) throw new RangeError('template: #@end without #@each');
      for (const r of opts.replicas) for (const b of block) out.push(fill(b, { tag: r.tag, address: r.address }));
      block = undefined;
    } else if (block) {
      block.push(line);
    } else {
      // comments outside replica blocks (the header explains the placeholders) are kept as written
      out.push(marker.startsWith('#') ? line : fill(line, {}));
    }
  }
  if (block) throw new RangeError('template: #@each without #@end');
  return out.join('\n');
}

/** The balancer configuration for `opts`, from this folder's template. */
export function renderBalancer(kind: BalancerKind, opts: BalancerOptions): string {
  return renderTemplate(readFileSync(templatePath(kind), 'utf8'), opts);
}

/** `tag=host:port` → a replica. */
export function parseReplica(arg: string): Replica {
  const i = arg.indexOf('=');
  if (i <= 0) throw new RangeError(`a replica is <tag>=<host:port>, got ${JSON.stringify(arg)}`);
  return { tag: arg.slice(0, i), address: arg.slice(i + 1) };
}

function main(argv: string[]): number {
  const [kind, ...rest] = argv;
  const usage = 'usage: deploy/balancer.ts haproxy|nginx --bind [HOST:]PORT [--runtime-dir DIR] TAG=HOST:PORT…';
  if (kind !== 'haproxy' && kind !== 'nginx') {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  let bind: string | undefined;
  let runtimeDir: string | undefined;
  const replicas: Replica[] = [];
  try {
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === '--bind') bind = rest[++i];
      else if (a === '--runtime-dir') runtimeDir = rest[++i];
      else replicas.push(parseReplica(a));
    }
    if (bind === undefined) throw new RangeError('--bind is required');
    process.stdout.write(renderBalancer(kind, { bind, replicas, runtimeDir }));
    return 0;
  } catch (e) {
    process.stderr.write(`deploy/balancer.ts: ${(e as Error).message}\n${usage}\n`);
    return 2;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
