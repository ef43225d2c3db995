/**
 * `ehrgym serve` hardening flags: the warning for a non-loopback `--host`, `--writable-default` and
 * `--trust-forwarded` (spawned CLI on an empty world).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { exposureWarning, isLoopbackHost } from '../src/cli/serve.js';

const CLI = ['--import', 'tsx', 'src/cli/index.ts', 'serve', '--world', 'empty', '--port', '0'];

async function withServer(args: string[], fn: (url: string) => Promise<void>): Promise<string> {
  const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stdout} ${stderr}`)), 60_000);
      child.stdout.on('data', (d) => {
        stdout += d;
        const m = /(http:\/\/\S+\/fhir\/)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void exited.then(() => reject(new Error(`server exited early: ${stdout} ${stderr}`)));
    });
    await fn(url);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return stderr;
}

const obs = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'BP' }, valueString: '118/77 mmHg' });

test('loopback hosts give no warning; any other host names what it exposes', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) assert.equal(exposureWarning(h, false), '', h);
  assert.equal(isLoopbackHost('0.0.0.0'), false);
  const w = exposureWarning('0.0.0.0', false);
  assert.match(w, /^ehrgym: warning: --host 0\.0\.0\.0 exposes the FHIR API beyond this machine: it is unauthenticated and writable/);
  assert.match(exposureWarning('10.1.2.3', true), /writable by anyone, with or without a session\n$/);
});

test('serve --host <non-loopback> warns on stderr before binding', () => {
  // 192.0.2.1 (TEST-NET-1) is not on this machine: the bind fails after the warning, nothing is exposed
  const r = spawnSync(process.execPath, [...CLI, '--host', '192.0.2.1'], { encoding: 'utf8', timeout: 60_000 });
  assert.match(r.stderr, /ehrgym: warning: --host 192\.0\.2\.1 exposes the FHIR API beyond this machine: it is unauthenticated and writable/);
  assert.match(r.stderr, /ehrgym: --host 192\.0\.2\.1: cannot bind/);
  assert.equal(r.status, 1);
});

test('serve: writes without a session are refused unless --writable-default; forwarded headers only with --trust-forwarded', async () => {
  const stderr = await withServer([], async (url) => {
    const r = await fetch(`${url}Observation`, { method: 'POST', body: obs, headers: { 'content-type': 'application/fhir+json' } });
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { issue: Array<{ diagnostics: string }> }).issue[0]!.diagnostics, /Writes need a session/);
    const s = await fetch(`${url}_session/a/Observation`, { method: 'POST', body: obs, headers: { 'x-forwarded-host': 'ehr.example.org' } });
    assert.equal(s.status, 201);
    assert.equal(s.headers.get('location'), `${url}_session/a/Observation/1/_history/1`);
  });
  assert.equal(stderr, '', 'no warning on loopback');
  await withServer(['--writable-default', '--trust-forwarded'], async (url) => {
    const r = await fetch(`${url}Observation`, {
      method: 'POST',
      body: obs,
      headers: { 'x-forwarded-host': 'ehr.example.org', 'x-forwarded-proto': 'https' },
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('location'), 'https://ehr.example.org/fhir/Observation/1/_history/1');
    const b = (await (await fetch(`${url}Observation`)).json()) as { total: number };
    assert.equal(b.total, 1);
  });
});
