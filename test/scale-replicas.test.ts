/**
 * Replicas behind a real load balancer (docs/scale.md): four `ehrgym env serve` and four `ehrgym serve` processes on
 * loopback, HAProxy and nginx in front of them with the configurations rendered from deploy/haproxy.cfg and
 * deploy/nginx.conf (deploy/local.ts), and concurrent episodes that write driven through the balancers:
 *
 * - every episode reads back exactly its own writes (no lost write, no other episode's data), and each session lives
 *   on exactly one replica — the one its id's replica tag names, or for FHIR sessions the one consistent hashing picks;
 * - one replica is killed (SIGKILL) mid-run: requests for its sessions answer 503 with a JSON body naming the session's
 *   replica as unavailable, its WebSockets close, every other episode goes on and new sessions open on the live
 *   replicas.
 *
 * Skipped with a message where haproxy or nginx is not installed (.ci/run installs both).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { renderBalancer } from '../deploy/balancer.js';
import { findBinary, type LocalBalancer, type LocalReplica, startBalancer, startReplicas } from '../deploy/local.js';
import { checkReplicaId, mintSessionId, replicaOf } from '../src/fhir/replica.js';
import { createMcpEndpoint } from '../src/protocol/mcp.js';
import { replicaIdFlag } from '../src/cli/flags.js';
import { CliError } from '../src/cli/errors.js';
import { FhirEpisode, marker, OrsEpisode, type ReadBack, RpcEpisode, type ScaleEpisode, WsEpisode } from './helpers/scale-episodes.js';
import { cli } from './helpers/cli.js';

const HAPROXY = findBinary('haproxy');
const NGINX = findBinary('nginx');
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';

const dirs: string[] = [];
const procs: Array<{ stop(signal?: NodeJS.Signals): Promise<unknown> }> = [];
const balancers: LocalBalancer[] = [];
after(async () => {
  // SIGTERM for the balancers: nginx's master stops its workers then (a SIGKILL would leave them running)
  await Promise.all([...procs.map((p) => p.stop('SIGKILL')), ...balancers.map((b) => b.stop('SIGTERM'))]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ehrgym-scale-'));
  dirs.push(d);
  return d;
}

async function balancer(kind: 'haproxy' | 'nginx', replicas: LocalReplica[]): Promise<LocalBalancer> {
  const b = await startBalancer(kind, replicas, tempDir());
  balancers.push(b);
  return b;
}

/** Run `f` over all `items` at once. */
async function all<T, R>(items: readonly T[], f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  return Promise.all(items.map((x, i) => f(x, i)));
}

/** The 503 JSON body a balancer answers for a session whose replica is down. */
function assertReplicaUnavailable(r: ReadBack, sid: string, what: string): void {
  assert.equal(r.ok, false, `${what}: a session on the dead replica still answered`);
  if (r.ok) return;
  assert.equal(r.status, 503, `${what}: ${r.body}`);
  const body = JSON.parse(r.body) as { error: string; message: string; session: string };
  assert.equal(body.error, 'replica_unavailable', what);
  assert.match(body.message, /replica holding this session .*is unavailable/);
  assert.equal(body.session, sid, what);
}

test('replica ids: minted ids carry the tag; without one they are plain UUIDs; bad ids are refused with one line', async () => {
  assert.match(mintSessionId(), new RegExp(`^${UUID}$`));
  assert.match(mintSessionId('r3'), new RegExp(`^r3\\.${UUID}$`));
  const longest = 'a'.repeat(27);
  assert.equal(mintSessionId(longest).length, 64, 'the longest tag still gives a valid FHIR session id');
  assert.equal(replicaOf('r3.abc'), 'r3');
  assert.equal(replicaOf('ehrgym-env-2.abc'), 'ehrgym-env-2');
  assert.equal(replicaOf(mintSessionId()), undefined);
  for (const bad of ['', 'a.b', 'x y', '-r', 'a'.repeat(28), 'r/1']) assert.throws(() => checkReplicaId(bad), RangeError, bad);
  assert.equal(replicaIdFlag(undefined, {}), undefined);
  assert.equal(replicaIdFlag(undefined, { EHRGYM_REPLICA_ID: '' }), undefined);
  assert.equal(replicaIdFlag(undefined, { EHRGYM_REPLICA_ID: 'pod-1' }), 'pod-1');
  assert.equal(replicaIdFlag('r0', { EHRGYM_REPLICA_ID: 'pod-1' }), 'r0', 'the flag wins over the variable');
  assert.throws(
    () => replicaIdFlag('a.b', {}),
    (e: unknown) => e instanceof CliError && /^--replica-id: /.test(e.message),
  );
  assert.throws(
    () => replicaIdFlag(undefined, { EHRGYM_REPLICA_ID: 'a b' }),
    (e: unknown) => e instanceof CliError && /^EHRGYM_REPLICA_ID/.test(e.message),
  );
  for (const cmd of [['serve'], ['env', 'serve']]) {
    const r = await cli(...cmd, '--replica-id', 'no.dots', '--port', '0');
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /^ehrgym: --replica-id: a replica id is 1-27 characters/);
  }
  // the MCP endpoint mints tagged ids with a replica id, plain UUIDs without
  const init = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  });
  for (const [replicaId, re] of [
    ['r7', new RegExp(`^r7\\.${UUID}$`)],
    [undefined, new RegExp(`^${UUID}$`)],
  ] as const) {
    const ep = createMcpEndpoint({
      replicaId,
      openSession: async () => ({ apiBase: 'http://x/fhir/', execute: async () => '', close: async () => undefined }),
    });
    const res = await ep.fetch(
      new Request('http://127.0.0.1/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: init,
      }),
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get('mcp-session-id') ?? '', re);
    await ep.close();
  }
});

test('balancer configurations: rendered from deploy/ byte for byte the same each time, accepted by haproxy -c and nginx -t', async (t) => {
  const replicas = [
    { tag: 'r0', address: '127.0.0.1:9001' },
    { tag: 'r1', address: 'ehrgym-env-1.ehrgym-env:8091' },
  ];
  for (const kind of ['haproxy', 'nginx'] as const) {
    const dir = tempDir();
    const a = renderBalancer(kind, { bind: '127.0.0.1:9000', replicas, runtimeDir: dir });
    assert.equal(renderBalancer(kind, { bind: '127.0.0.1:9000', replicas, runtimeDir: dir }), a);
    assert.doesNotMatch(a.replace(/^\s*#.*$/gm, ''), /\{\{|#@/, 'every placeholder outside comments is filled');
    assert.match(a, kind === 'haproxy' ? /use_backend replica-r1 if \{ var\(txn\.sid\) -m beg r1\. \}/ : /"~\^r1\\\." replica-r1;/);
    assert.throws(
      () => renderBalancer(kind, { bind: '9000', replicas: [...replicas, { tag: 'r0', address: '127.0.0.1:9002' }], runtimeDir: dir }),
      /given twice/,
    );
    assert.throws(() => renderBalancer(kind, { bind: '9000', replicas: [{ tag: 'r.0', address: '127.0.0.1:9002' }], runtimeDir: dir }), /not a replica id/);
  }
  const { spawnSync } = await import('node:child_process');
  for (const [kind, bin] of [
    ['haproxy', HAPROXY],
    ['nginx', NGINX],
  ] as const) {
    if (!bin) {
      t.diagnostic(`${kind} not installed: its configuration was not checked by ${kind} itself`);
      continue;
    }
    const dir = tempDir();
    const file = join(dir, `${kind}.conf`);
    const { writeFileSync } = await import('node:fs');
    // nginx resolves upstream names when it starts: the check uses addresses (the Kubernetes files use HAProxy, which
    // resolves at run time)
    const checked = kind === 'nginx' ? replicas.map((r, i) => ({ tag: r.tag, address: `127.0.0.1:${9001 + i}` })) : replicas;
    writeFileSync(file, renderBalancer(kind, { bind: '127.0.0.1:9000', replicas: checked, runtimeDir: dir }));
    const r =
      kind === 'haproxy'
        ? spawnSync(bin, ['-c', '-f', file], { encoding: 'utf8' })
        : spawnSync(bin, ['-t', '-p', `${dir}/`, '-c', file, '-e', 'stderr'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${kind}: ${r.stdout}${r.stderr}`);
  }
});

/**
 * Open and write with every episode at once; then check where each session lives, kill `victim`, read back, and close.
 * Returns the episodes by outcome.
 */
async function driveAndKill(
  episodes: ScaleEpisode[],
  replicas: LocalReplica[],
  victim: LocalReplica,
  holder: (e: ScaleEpisode) => Promise<string>,
): Promise<{ onVictim: ScaleEpisode[]; live: ScaleEpisode[] }> {
  await all(episodes, async (e) => {
    await e.open();
    await e.write();
  });
  // where each session lives, asked of the replicas themselves
  const at = await all(episodes, holder);
  const per = new Map(replicas.map((r) => [r.tag, 0]));
  for (const tag of at) per.set(tag, (per.get(tag) ?? 0) + 1);
  for (const r of replicas) assert.ok(per.get(r.tag)! > 0, `replica ${r.tag} got no session: ${JSON.stringify([...per])}`);
  await victim.stop('SIGKILL');
  const onVictim = episodes.filter((_, i) => at[i] === victim.tag);
  const live = episodes.filter((_, i) => at[i] !== victim.tag);
  const reads = await all(episodes, (e) => e.read());
  episodes.forEach((e, i) => {
    const r = reads[i]!;
    if (at[i] === victim.tag) {
      if (e.kind === 'ws') assert.equal(r.ok, false, `${e.kind} ${e.sid}: a WebSocket of the dead replica still answered`);
      else assertReplicaUnavailable(r, e.sid!, `${e.kind} ${e.sid}`);
      return;
    }
    assert.ok(r.ok, `${e.kind} ${e.sid} on ${at[i]}: ${r.ok ? '' : `${r.status} ${r.body}`}`);
    const want = e.kind === 'fhir' ? [e.marker, e.marker] : [e.marker];
    assert.deepEqual(r.markers, want, `${e.kind} ${e.sid} read back ${r.markers.join(', ')}`);
  });
  await all(live, (e) => e.close());
  return { onVictim, live };
}

test('HAProxy and nginx in front of 4 `ehrgym env serve` replicas: 1,000 concurrent ORS, OpenEnv JSON-RPC and WebSocket episodes that write, a replica killed mid-run', {
  timeout: 180_000,
}, async (t) => {
  if (!HAPROXY) return t.skip('haproxy not installed: apt-get install haproxy (Debian), or see docs/scale.md');
  const t0 = Date.now();
  const replicas = await startReplicas('env', 4, ['--train-size', '5']);
  procs.push(...replicas);
  const hap = await balancer('haproxy', replicas);
  const ngx = NGINX ? await balancer('nginx', replicas) : undefined;
  if (!ngx) t.diagnostic('nginx not installed: only HAProxy was tested');
  t.diagnostic(`4 replicas and the balancers up in ${Date.now() - t0} ms`);
  const run = Date.now().toString(36);
  const episodes: ScaleEpisode[] = [];
  for (let i = 0; i < 1000; i++) {
    const mk = marker(`${run}-${i}`);
    // HAProxy: ORS, JSON-RPC (routed on the body's session_id) and WebSocket; nginx: ORS and WebSocket
    if (ngx && i % 5 === 4) episodes.push(i % 10 === 4 ? new OrsEpisode(ngx.url, i, mk) : new WsEpisode(ngx.url, i, mk));
    else episodes.push(i % 3 === 0 ? new OrsEpisode(hap.url, i, mk) : i % 3 === 1 ? new RpcEpisode(hap.url, i, mk) : new WsEpisode(hap.url, i, mk));
  }
  const byTag = new Map(replicas.map((r) => [r.tag, r]));
  const victim = replicas[2]!;
  const t1 = Date.now();
  const { onVictim, live } = await driveAndKill(episodes, replicas, victim, async (e) => {
    const tag = e.sid?.split('.')[0] ?? '';
    assert.ok(byTag.has(tag), `${e.kind} session id ${e.sid} carries a replica tag`);
    if (e.kind === 'ors') {
      // the session is on the replica its tag names and on no other
      for (const r of replicas) {
        const res = await fetch(`${r.url}/ping`, { method: 'POST', headers: { 'x-session-id': e.sid! } });
        assert.equal(res.status, r.tag === tag ? 200 : 404, `ORS ${e.sid} asked of ${r.tag}`);
      }
    }
    return tag;
  });
  t.diagnostic(`1,000 episodes in ${Date.now() - t1} ms: ${onVictim.length} on the killed replica, ${live.length} live`);
  assert.ok(onVictim.some((e) => e.kind === 'ors') && onVictim.some((e) => e.kind === 'rpc') && onVictim.some((e) => e.kind === 'ws'));
  // new sessions after the kill open on the live replicas only
  const fresh = Array.from({ length: 60 }, (_, i) => {
    const mk = marker(`${run}-after-${i}`);
    return i % 3 === 0 ? new OrsEpisode(hap.url, i, mk) : i % 3 === 1 ? new RpcEpisode(hap.url, i, mk) : new WsEpisode(ngx?.url ?? hap.url, i, mk);
  });
  await all(fresh, async (e) => {
    await e.open();
    await e.write();
    const r = await e.read();
    assert.ok(r.ok && r.markers.length === 1 && r.markers[0] === e.marker, `${e.kind} ${e.sid} after the kill: ${JSON.stringify(r)}`);
    assert.notEqual(e.sid!.split('.')[0], victim.tag, 'no new session on the dead replica');
    await e.close();
  });
  // a request naming no session still gets an answer, and the dead replica's ids a clear error
  assert.equal((await fetch(`${hap.url}/health`)).status, 200);
  const dead = await fetch(`${hap.url}/ping`, { method: 'POST', headers: { 'x-session-id': `${victim.tag}.00000000-0000-4000-8000-000000000000` } });
  assert.equal(dead.status, 503);
  assert.match(dead.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(((await dead.json()) as { replica: string }).replica, victim.tag);
});

test('HAProxy and nginx in front of 4 `ehrgym serve` replicas: 1,000 concurrent FHIR sessions that write (path and header addressing), MCP sessions, a replica killed mid-run', {
  timeout: 180_000,
}, async (t) => {
  if (!HAPROXY) return t.skip('haproxy not installed: apt-get install haproxy (Debian), or see docs/scale.md');
  const t0 = Date.now();
  const replicas = await startReplicas('serve', 4, ['--world', 'empty']);
  procs.push(...replicas);
  const hap = await balancer('haproxy', replicas);
  const ngx = NGINX ? await balancer('nginx', replicas) : undefined;
  if (!ngx) t.diagnostic('nginx not installed: only HAProxy was tested');
  t.diagnostic(`4 replicas and the balancers up in ${Date.now() - t0} ms`);
  const run = Date.now().toString(36);
  const episodes: ScaleEpisode[] = Array.from({ length: 1000 }, (_, i) => {
    const lb = ngx && i % 4 === 3 ? ngx : hap;
    return new FhirEpisode(lb.url, `ep-${run}-${i}`, marker(`${run}-${i}`), i % 2 === 0 ? 'path' : 'header');
  });

  // MCP sessions (the official SDK client) through each balancer: ids minted with the replica's tag
  const mcp = await all(
    Array.from({ length: 16 }, (_, i) => (ngx && i % 2 === 1 ? ngx : hap)),
    async (lb, i) => {
      const transport = new StreamableHTTPClientTransport(new URL(`${lb.url}/mcp`));
      const client = new Client({ name: 'scale-test', version: '1.0.0' });
      await client.connect(transport);
      const mk = marker(`${run}-mcp-${i}`);
      const patient = `Patient/mcp-${run}-${i}`;
      const body = {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ code: 'vital-signs' }] }],
        code: { text: 'BP' },
        valueString: mk,
        subject: { reference: patient },
      };
      const made = (await client.callTool({ name: 'observation_create', arguments: body })) as { content: Array<{ text: string }> };
      assert.match(made.content[0]!.text, /POST request accepted/);
      return { client, transport, mk, patient, sid: transport.sessionId! };
    },
  );
  const mcpRead = async (m: (typeof mcp)[number]) => {
    const r = (await m.client.callTool({ name: 'observation_search_vitals', arguments: { patient: m.patient.slice('Patient/'.length) } })) as {
      content: Array<{ text: string }>;
    };
    return r.content[0]!.text.match(/scale-mark-[A-Za-z0-9-]+-end/g) ?? [];
  };
  for (const m of mcp) {
    assert.match(m.sid, new RegExp(`^r[0-3]\\.${UUID}$`), 'MCP session ids carry the replica tag');
    assert.deepEqual(await mcpRead(m), [m.mk]);
  }
  assert.ok(new Set(mcp.map((m) => m.sid.split('.')[0])).size >= 2, 'MCP sessions spread over the replicas');

  const victim = replicas[1]!;
  const t1 = Date.now();
  const { onVictim, live } = await driveAndKill(episodes, replicas, victim, async (e) => {
    // exactly one replica holds the session's writes: both landed on the same replica
    const holders: string[] = [];
    for (const r of replicas) {
      const res = await fetch(`${r.url}/fhir/_session/${e.sid}/Observation?code=urn:ehrgym:scale|scale-check&_summary=count`);
      const total = ((await res.json()) as { total: number }).total;
      if (total > 0) holders.push(`${r.tag}:${total}`);
    }
    assert.equal(holders.length, 1, `FHIR session ${e.sid} is held by ${holders.join(', ') || 'no replica'}`);
    assert.match(holders[0]!, /:2$/);
    return holders[0]!.split(':')[0]!;
  });
  t.diagnostic(`1,000 FHIR episodes in ${Date.now() - t1} ms: ${onVictim.length} on the killed replica, ${live.length} live`);
  for (const m of mcp) {
    if (m.sid.startsWith(`${victim.tag}.`)) {
      await assert.rejects(mcpRead(m), /503|replica_unavailable/, `MCP ${m.sid} on the dead replica`);
    } else {
      assert.deepEqual(await mcpRead(m), [m.mk], `MCP ${m.sid}`);
      await m.transport.terminateSession();
      await m.client.close();
    }
  }
  // a new FHIR session whose id hashes to the dead replica is refused, not opened elsewhere
  const onDead = onVictim.find((e) => (e as FhirEpisode).base === hap.url)!;
  const again = await fetch(`${hap.url}/fhir/_session/${onDead.sid}/Observation`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }),
  });
  assert.equal(again.status, 503);
  assert.equal(((await again.json()) as { error: string }).error, 'replica_unavailable');
  // a body larger than the balancers' in-memory buffers passes through (nginx buffers it in its runtime folder)
  const big = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'big' }, valueString: 'x'.repeat(200_000) });
  // (a session id that hashes to the dead replica is refused with the JSON 503: the next id is tried)
  for (const lb of ngx ? [hap, ngx] : [hap]) {
    let created = false;
    for (let k = 0; k < 8 && !created; k++) {
      const res = await fetch(`${lb.url}/fhir/_session/big-${run}-${lb.kind}-${k}/Observation`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json' },
        body: big,
      });
      const text = await res.text();
      created = res.status === 201;
      if (!created) assert.ok(res.status === 503 && /replica_unavailable/.test(text), `${lb.kind}: ${res.status} ${text.slice(0, 200)}`);
    }
    assert.ok(created, `${lb.kind}: a 200 KB write went through`);
  }
  // reads without a session go on
  assert.equal((await fetch(`${hap.url}/fhir/metadata`)).status, 200);
  if (ngx) assert.equal((await fetch(`${ngx.url}/fhir/metadata`)).status, 200);
});
