/**
 * The deployment files of deploy/ (docs/scale.md), checked as far as this machine allows without a cluster, a Slurm
 * controller or a Docker daemon: the Kubernetes manifests parse (the `yaml` package) and agree with each other (replica
 * count, pod names as replica ids, the HAProxy ConfigMap being exactly deploy/haproxy.cfg rendered for those pods,
 * shard index wiring: completions = parallelism = N, the index variable in `--shard i/N`); the Slurm scripts' array
 * and dependent merge; the Dockerfile's stages. Every ehrgym flag the files use must appear in that command's
 * `--help`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { renderBalancer } from '../deploy/balancer.js';
import { findBinary } from '../deploy/local.js';
import { cli } from './helpers/cli.js';

const read = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, read field by field and checked by the assertions
type Doc = Record<string, any>;

function manifests(p: string): Doc[] {
  const docs = parseAllDocuments(read(p));
  for (const d of docs) assert.deepEqual(d.errors, [], `${p}: ${d.errors.join('; ')}`);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function one(docs: Doc[], kind: string, name?: string): Doc {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  assert.equal(found.length, 1, `one ${kind} ${name ?? ''}`);
  return found[0]!;
}

const helpCache = new Map<string, Promise<Set<string> | undefined>>();
/** The flags `ehrgym <command> --help` lists, or undefined when there is no such command. */
function flagsOf(command: string): Promise<Set<string> | undefined> {
  let p = helpCache.get(command);
  if (!p) {
    p = cli(...command.split(' '), '--help').then((r) => {
      if (!r.out.startsWith(`Usage: ehrgym ${command} `)) return undefined;
      return new Set(r.out.match(/(?<=^|[\s,])--[a-z][a-z0-9-]*/g) ?? []);
    });
    helpCache.set(command, p);
  }
  return p;
}

/** The ehrgym commands in a shell text: `<cli> <command> --flag …` (npx ehrgym, $EHRGYM or node …/dist/cli/index.js). */
function invocations(shell: string): Array<{ command: string; flags: string[]; args: string[] }> {
  const out: Array<{ command: string; flags: string[]; args: string[] }> = [];
  const joined = shell.replace(/\\\n\s*/g, ' ');
  const re = /(?:npx ehrgym|\$EHRGYM|node \/app\/dist\/cli\/index\.js)\s+(env serve|serve|eval|merge)\b([^\n;]*)/g;
  for (const m of joined.matchAll(re)) {
    const args = m[2]!.trim().split(/\s+/);
    out.push({ command: m[1]!, flags: args.filter((a) => a.startsWith('--')), args });
  }
  return out;
}

async function checkFlags(where: string, command: string, flags: readonly string[]): Promise<void> {
  const known = await flagsOf(command);
  for (const f of flags) assert.ok(known?.has(f), `${where}: ehrgym ${command} has no flag ${f}${known ? '' : ' (no such command)'}`);
}

/** The value after `flag` in an argument list. */
function valueOf(args: readonly string[], flag: string): string {
  const i = args.indexOf(flag);
  assert.ok(i >= 0 && i + 1 < args.length, `${flag} is given`);
  return args[i + 1]!;
}

test('environment StatefulSet + HAProxy: pod names are the replica ids, the ConfigMap is deploy/haproxy.cfg rendered for those pods', async (t) => {
  const env = manifests('deploy/k8s/env.yaml');
  const svc = one(env, 'Service', 'ehrgym-env');
  const sts = one(env, 'StatefulSet', 'ehrgym-env');
  assert.equal(svc.spec.clusterIP, 'None', 'a headless service gives each pod a DNS name');
  assert.equal(sts.spec.serviceName, svc.metadata.name);
  assert.deepEqual(svc.spec.selector, sts.spec.selector.matchLabels);
  assert.deepEqual(sts.spec.template.metadata.labels, sts.spec.selector.matchLabels);
  const n = sts.spec.replicas as number;
  assert.ok(Number.isInteger(n) && n >= 2);
  const c = sts.spec.template.spec.containers[0];
  assert.equal(c.args[0], 'env');
  assert.equal(c.args[1], 'serve');
  await checkFlags(
    'env.yaml',
    'env serve',
    c.args.filter((a: string) => a.startsWith('--')),
  );
  assert.equal(valueOf(c.args, '--host'), '0.0.0.0');
  const port = Number(valueOf(c.args, '--port'));
  assert.equal(c.ports[0].containerPort, port);
  assert.deepEqual(
    c.env.find((e: Doc) => e.name === 'EHRGYM_REPLICA_ID'),
    { name: 'EHRGYM_REPLICA_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    'each pod mints ids with its own name',
  );
  assert.equal(c.readinessProbe.httpGet.path, '/health');
  assert.equal(sts.spec.template.spec.securityContext.runAsNonRoot, true);

  const lb = manifests('deploy/k8s/haproxy.yaml');
  const cm = one(lb, 'ConfigMap');
  const dep = one(lb, 'Deployment');
  const lbSvc = one(lb, 'Service');
  const ns = 'default';
  const replicas = Array.from({ length: n }, (_, i) => ({
    tag: `${sts.metadata.name}-${i}`,
    address: `${sts.metadata.name}-${i}.${svc.metadata.name}.${ns}.svc.cluster.local:${port}`,
  }));
  const cfg = renderBalancer('haproxy', { bind: `0.0.0.0:${port}`, replicas });
  assert.ok(cm.data['haproxy.cfg'] === cfg, 'the ConfigMap is the template rendered for the StatefulSet (re-render it: docs/scale.md)');
  const hc = dep.spec.template.spec.containers[0];
  const mount = hc.volumeMounts.find((m: Doc) => m.name === 'config');
  assert.equal(dep.spec.template.spec.volumes.find((v: Doc) => v.name === 'config').configMap.name, cm.metadata.name);
  assert.equal(hc.args.at(-1), `${mount.mountPath}/haproxy.cfg`);
  assert.ok(hc.args.includes('-db'), 'in the foreground');
  assert.equal(hc.ports[0].containerPort, port);
  assert.deepEqual(lbSvc.spec.selector, dep.spec.selector.matchLabels);
  assert.equal(lbSvc.spec.ports[0].port, port);
  const haproxy = findBinary('haproxy');
  if (haproxy) {
    const dir = mkdtempSync(join(tmpdir(), 'ehrgym-manifest-'));
    try {
      writeFileSync(join(dir, 'haproxy.cfg'), cm.data['haproxy.cfg']);
      const r = spawnSync(haproxy, ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    t.diagnostic('haproxy not installed: the ConfigMap was not checked by haproxy -c');
  }
});

test('eval Indexed Job: completions = parallelism = N of --shard i/N, the completion index in --shard and --out; the merge Job reads every shard', async () => {
  const job = one(manifests('deploy/k8s/eval-job.yaml'), 'Job', 'ehrgym-eval');
  assert.equal(job.spec.completionMode, 'Indexed');
  const spec = job.spec.template.spec;
  const c = spec.containers[0];
  const [run] = invocations(c.args.join('\n'));
  assert.ok(run, 'the Job runs ehrgym eval');
  assert.equal(run.command, 'eval');
  await checkFlags('eval-job.yaml', 'eval', run.flags);
  const shard = /^"?\$JOB_COMPLETION_INDEX\/(\d+)"?$/.exec(valueOf(run.args, '--shard'));
  assert.ok(shard, '--shard is <completion index>/N');
  const n = Number(shard[1]);
  assert.equal(job.spec.completions, n);
  assert.equal(job.spec.parallelism, n);
  assert.deepEqual(c.env.find((e: Doc) => e.name === 'JOB_COMPLETION_INDEX').valueFrom.fieldRef, {
    fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']",
  });
  assert.match(c.args.join('\n'), /out=\/runs\/qwen3-8b\/shard-\$JOB_COMPLETION_INDEX;/);
  const merge = one(manifests('deploy/k8s/eval-merge-job.yaml'), 'Job');
  const m = merge.spec.template.spec.containers[0];
  assert.equal(m.args[0], 'merge');
  await checkFlags(
    'eval-merge-job.yaml',
    'merge',
    m.args.filter((a: string) => a.startsWith('--')),
  );
  const outAt = m.args.indexOf('--out');
  assert.deepEqual(
    m.args.slice(1, outAt),
    Array.from({ length: n }, (_, i) => `/runs/qwen3-8b/shard-${i}`),
    'every shard folder is merged',
  );
  const claim = (s: Doc) => s.volumes.find((v: Doc) => v.name === 'runs').persistentVolumeClaim.claimName;
  assert.equal(claim(merge.spec.template.spec), claim(spec), 'the shards and the merge share one volume');
});

test('Slurm: an array of N tasks with SLURM_ARRAY_TASK_ID in --shard, then the merge with afterok on the array', async () => {
  const array = read('deploy/slurm/eval-array.sbatch');
  const merge = read('deploy/slurm/merge.sbatch');
  const submit = read('deploy/slurm/submit.sh');
  const range = /^#SBATCH --array=0-(\d+)$/m.exec(array);
  assert.ok(range);
  const n = Number(range[1]) + 1;
  assert.match(array, new RegExp(`SHARDS="\\$\\{SLURM_ARRAY_TASK_COUNT:-${n}\\}"`));
  const [run] = invocations(array);
  assert.equal(run?.command, 'eval');
  await checkFlags('eval-array.sbatch', 'eval', run!.flags);
  assert.equal(valueOf(run!.args, '--shard'), '"$SLURM_ARRAY_TASK_ID/$SHARDS"');
  const [m] = invocations(merge);
  assert.equal(m?.command, 'merge');
  await checkFlags('merge.sbatch', 'merge', m!.flags);
  assert.match(merge, new RegExp(`SHARDS="\\$\\{SHARDS:-${n}\\}"`));
  assert.match(submit, /sbatch --parsable --export=ALL --array="0-\$\(\(SHARDS - 1\)\)"/);
  assert.match(submit, /--dependency="afterok:\$array"/);
  for (const [name, text] of [
    ['eval-array.sbatch', array],
    ['merge.sbatch', merge],
    ['submit.sh', submit],
  ] as const) {
    const r = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
  }
});

test('Dockerfile: a build stage and a non-root runtime stage with the built CLI, production dependencies and data/', async (t) => {
  const df = read('deploy/Dockerfile');
  const stages = [...df.matchAll(/^FROM (\S+)(?: AS (\w+))?$/gm)];
  assert.equal(stages.length, 2);
  assert.match(stages[0]![1]!, /^node:20/);
  assert.match(df, /RUN npm run build/);
  assert.match(df, /npm ci --omit=dev/);
  assert.match(df, /^COPY --from=build \/src\/dist \.\/dist$/m);
  assert.match(df, /^COPY data \.\/data$/m);
  const user = /^USER (\S+)$/m.exec(df)?.[1];
  assert.ok(user && user !== 'root' && user !== '0');
  assert.match(df, /^ENTRYPOINT \["node", "\/app\/dist\/cli\/index\.js"\]$/m);
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(df)![1]!) as string[];
  assert.deepEqual(cmd.slice(0, 2), ['env', 'serve']);
  await checkFlags(
    'Dockerfile',
    'env serve',
    cmd.filter((a) => a.startsWith('--')),
  );
  // the files the CLI reads at run time (data/, relative to dist/) are in the build context
  const ignore = read('.dockerignore').split('\n');
  for (const keep of ['!data', '!src', '!package.json', '!package-lock.json']) assert.ok(ignore.includes(keep), keep);
  const docker = spawnSync('docker', ['info'], { encoding: 'utf8', timeout: 10_000 });
  if (docker.status !== 0) t.diagnostic('no Docker daemon answers here: the image was not built');
  const kubectl = spawnSync('kubectl', ['apply', '--dry-run=client', '--validate=false', '-f', 'deploy/k8s/env.yaml'], { encoding: 'utf8', timeout: 20_000 });
  if (kubectl.status !== 0) t.diagnostic(`kubectl dry-run needs a cluster here: ${(kubectl.stderr || String(kubectl.error)).split('\n')[0]}`);
});
